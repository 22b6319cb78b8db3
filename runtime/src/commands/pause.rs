//! `pause` and `resume`.

use crate::cli;
use crate::{Failure, Global};

pub fn pause(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse(args, &[], false)?;
    Ok(super::runtime(g)?.pause(a.id("pause")?)?)
}

pub fn resume(g: &Global, args: &[String]) -> Result<(), Failure> {
    let a = cli::parse(args, &[], false)?;
    Ok(super::runtime(g)?.resume(a.id("resume")?)?)
}
