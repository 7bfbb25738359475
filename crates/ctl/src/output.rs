//! The output layer: the only place steadctl's bytes reach stdout and
//! stderr. Commands and printers write through [`Output`], which the binary
//! connects to the process streams and tests connect to buffers.
//!
//! Write failures (a closed pipe, say) are ignored, as Go's `fmt.Print*`
//! ignore them in etcdctl: the command's outcome and exit status do not
//! depend on whether anyone reads its output.

use std::io::Write;

/// Where a command's standard output and standard error go.
pub struct Output<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

impl<'a> Output<'a> {
    pub fn new(out: &'a mut dyn Write, err: &'a mut dyn Write) -> Self {
        Output { out, err }
    }

    /// Writes bytes to standard output.
    pub fn out(&mut self, bytes: impl AsRef<[u8]>) {
        let _ = self.out.write_all(bytes.as_ref());
    }

    /// Writes bytes to standard error.
    pub fn err(&mut self, bytes: impl AsRef<[u8]>) {
        let _ = self.err.write_all(bytes.as_ref());
    }

    /// Flushes standard output (before reading interactive input, or
    /// before exiting).
    pub fn flush(&mut self) {
        let _ = self.out.flush();
        let _ = self.err.flush();
    }

    /// The error stream, for [`crate::error::CtlError::report`].
    pub fn err_writer(&mut self) -> &mut dyn Write {
        self.err
    }
}
