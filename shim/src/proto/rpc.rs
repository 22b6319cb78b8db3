//! ttrpc's own messages: the request and response that each frame carries
//! (github.com/containerd/ttrpc, request.proto), and the gRPC status codes it reuses.

crate::message!(
    Request {
        1 => service: String,
        2 => method: String,
        3 => payload: Vec<u8>,
        4 => timeout_nano: i64,
    }
);

crate::message!(
    /// google.rpc.Status
    Status { 1 => code: i32, 2 => message: String }
);

crate::message!(Response { 1 => status: Option<Status>, 2 => payload: Vec<u8> });

/// The gRPC codes containerd maps onto its errdefs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Code {
    InvalidArgument = 3,
    NotFound = 5,
    AlreadyExists = 6,
    FailedPrecondition = 9,
    Unimplemented = 12,
    Internal = 13,
}

impl Code {
    /// The code a number on the wire names; unknown numbers are Internal.
    pub fn from_i32(n: i32) -> Code {
        [
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::FailedPrecondition,
            Code::Unimplemented,
        ]
        .into_iter()
        .find(|c| *c as i32 == n)
        .unwrap_or(Code::Internal)
    }
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code: code as i32,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}
