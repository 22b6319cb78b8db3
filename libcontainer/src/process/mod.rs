//! The container's init: the clone3'd child of `create` that sets the container up, waits for
//! `start`, then execs the user's program (so the program is the container's pid 1).

pub mod attrs;
pub mod channel;
pub mod init;
pub mod join;
pub mod privileges;
pub mod program;
