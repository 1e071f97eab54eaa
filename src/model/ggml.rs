//! placeholder until the model branch lands
use std::path::Path;
#[derive(Debug, Clone)]
pub struct GgmlInfo;
pub fn validate(_path: &Path) -> Result<GgmlInfo, super::ModelError> {
    Ok(GgmlInfo)
}
