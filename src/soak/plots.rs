//! PNG plots of a soak (filled in below).

use std::path::Path;

use super::report::SoakReport;

/// Draws the plots into `dir`; returns the files and a note.
pub fn draw(_report: &SoakReport, _dir: &Path) -> Result<(Vec<String>, Option<String>), String> {
    Ok((Vec::new(), Some("plots not drawn yet".to_owned())))
}
