//! TEMPORARY stand-in with the interface the real managers (branch `cgroups`) provide; replaced at merge.
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

#[derive(Debug)]
pub struct CgroupError(String);
impl std::fmt::Display for CgroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
pub type Result<T> = std::result::Result<T, CgroupError>;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct CgroupConfig {
    pub path: PathBuf,
}

impl CgroupConfig {
    pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<CgroupConfig> {
        Ok(CgroupConfig {
            path: cgroups_path
                .map(Path::to_path_buf)
                .unwrap_or_else(|| Path::new("/hezi").join(id)),
        })
    }
}

pub trait Manager {
    fn create(&self) -> Result<()>;
    fn add_task(&self, pid: i32) -> Result<()>;
    fn apply_resources(&self, r: &LinuxResources) -> Result<()>;
    fn freeze(&self) -> Result<()>;
    fn thaw(&self) -> Result<()>;
    fn is_frozen(&self) -> Result<bool>;
    fn pids(&self) -> Result<Vec<i32>>;
    fn kill_all(&self, signal: i32) -> Result<()>;
    fn destroy(&self) -> Result<()>;
    fn v2_dir_fd(&self) -> Result<Option<std::os::fd::OwnedFd>>;
}

struct Nop;
impl Manager for Nop {
    fn create(&self) -> Result<()> {
        Ok(())
    }
    fn add_task(&self, _: i32) -> Result<()> {
        Ok(())
    }
    fn apply_resources(&self, _: &LinuxResources) -> Result<()> {
        Ok(())
    }
    fn freeze(&self) -> Result<()> {
        Ok(())
    }
    fn thaw(&self) -> Result<()> {
        Ok(())
    }
    fn is_frozen(&self) -> Result<bool> {
        Ok(false)
    }
    fn pids(&self) -> Result<Vec<i32>> {
        Ok(vec![])
    }
    fn kill_all(&self, _: i32) -> Result<()> {
        Ok(())
    }
    fn destroy(&self) -> Result<()> {
        Ok(())
    }
    fn v2_dir_fd(&self) -> Result<Option<std::os::fd::OwnedFd>> {
        Ok(None)
    }
}

pub fn manager(_: &CgroupConfig) -> Result<Box<dyn Manager>> {
    Ok(Box::new(Nop))
}
