//! The output layer: the only place steadctl's bytes reach stdout and
//! stderr. Commands and printers write through [`Output`], which the binary
//! connects to the process streams and tests connect to buffers.
//!
//! Write failures (a closed pipe, say) are ignored, as Go's `fmt.Print*`
//! ignore them in etcdctl: the command's outcome and exit status do not
//! depend on whether anyone reads its output. One exception is kept in
//! view: Go kills a program whose standard output or error is a pipe
//! closed by its reader (SIGPIPE), which is how `etcdctl watch ... | head
//! -1` ends; [`Output::pipe_closed`] lets `watch` do the same.

use std::io::Write;

/// Where a command's standard output and standard error go.
pub struct Output<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    pipe_closed: bool,
}

impl<'a> Output<'a> {
    pub fn new(out: &'a mut dyn Write, err: &'a mut dyn Write) -> Self {
        Output {
            out,
            err,
            pipe_closed: false,
        }
    }

    fn note(&mut self, result: std::io::Result<()>) {
        if result.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
            self.pipe_closed = true;
        }
    }

    /// Writes bytes to standard output.
    pub fn out(&mut self, bytes: impl AsRef<[u8]>) {
        let result = self.out.write_all(bytes.as_ref());
        self.note(result);
    }

    /// Writes bytes to standard error.
    pub fn err(&mut self, bytes: impl AsRef<[u8]>) {
        let result = self.err.write_all(bytes.as_ref());
        self.note(result);
    }

    /// Flushes standard output (before reading interactive input, or
    /// before exiting).
    pub fn flush(&mut self) {
        let result = self.out.flush();
        self.note(result);
        let result = self.err.flush();
        self.note(result);
    }

    /// Whether a write failed because the reader of a pipe went away.
    pub fn pipe_closed(&self) -> bool {
        self.pipe_closed
    }

    /// The error stream, for [`crate::error::CtlError::report`].
    pub fn err_writer(&mut self) -> &mut dyn Write {
        self.err
    }
}
