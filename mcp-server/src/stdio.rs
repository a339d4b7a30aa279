//! `meshos mcp`'s stdio transport: newline-delimited JSON-RPC as rmcp's `AsyncRwTransport` speaks
//! it, except that a line which is not a JSON-RPC message is answered. rmcp drops a line that is
//! not JSON without a word (on purpose, so that two misconnected peers cannot bounce errors) and
//! answers a malformed message with a -32600 that has no `id` member, which JSON-RPC 2.0 and the
//! official Python SDK reject. Here each line goes through [`parse_client_message`], the check
//! `POST /mcp` uses too, and a refused line gets its JSON-RPC error (`"id": null` when it had no
//! readable id) — except a notification or a response, which are never answered, so an echoed
//! error reply is not answered again. A line longer than `[limits] max_mcp_body_bytes` (the bound
//! of one `POST /mcp` body) is answered -32600 and skipped, never buffered whole. Either way the
//! session goes on with the next line.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt as _};
use rmcp::RoleServer;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Mutex;
use tokio_util::bytes::{Bytes, BytesMut};
use tokio_util::codec::{BytesCodec, Decoder, FramedRead, FramedWrite};

use crate::jsonrpc::{Rejection, parse_client_message};

type Output<W> = Arc<Mutex<Option<FramedWrite<W, BytesCodec>>>>;
type Write = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

/// An MCP server transport over a reader and a writer of JSON lines (stdin and stdout).
pub struct StdioTransport<R, W> {
    lines: FramedRead<R, Lines>,
    output: Output<W>,
    /// An error reply being written. `receive` finishes it before reading on, so replies keep the
    /// order of the input, and keeps it across cancellation (rmcp polls `receive` in a `select!`).
    reply: Option<Write>,
}

impl<R, W> StdioTransport<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    /// `max_line` bounds one message (`[limits] max_mcp_body_bytes`, as for `POST /mcp`).
    pub fn new(read: R, write: W, max_line: usize) -> Self {
        Self {
            lines: FramedRead::new(read, Lines::new(max_line)),
            output: Arc::new(Mutex::new(Some(FramedWrite::new(write, BytesCodec::new())))),
            reply: None,
        }
    }
}

/// Writes one JSON value and its newline; the writer is shared by replies and rmcp's messages,
/// and a line goes out whole (a cancelled write leaves the rest in `FramedWrite`'s buffer).
fn write_line<W>(output: Output<W>, json: Result<Vec<u8>, serde_json::Error>) -> Write
where
    W: AsyncWrite + Send + Unpin + 'static,
{
    Box::pin(async move {
        let mut line = json.map_err(io::Error::other)?;
        line.push(b'\n');
        match output.lock().await.as_mut() {
            Some(framed) => framed.send(Bytes::from(line)).await,
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the stdio transport is closed",
            )),
        }
    })
}

impl<R, W> Transport<RoleServer> for StdioTransport<R, W>
where
    R: AsyncRead + Send + Unpin,
    W: AsyncWrite + Send + Unpin + 'static,
{
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        write_line(self.output.clone(), serde_json::to_vec(&item))
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            if let Some(reply) = self.reply.as_mut() {
                let written = reply.await;
                self.reply = None;
                if let Err(e) = written {
                    tracing::error!(error = %e, "cannot write to stdout; closing the session");
                    return None;
                }
            }
            let rejection = match self.lines.next().await? {
                Ok(Line::Message(line)) => {
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match parse_client_message(&line) {
                        Ok(message) => return Some(message),
                        Err(rejection) => rejection,
                    }
                }
                Ok(Line::TooLong) => Rejection::invalid_request(
                    None,
                    format_args!(
                        "a message is at most {} bytes ([limits] max_mcp_body_bytes)",
                        self.lines.decoder().max
                    ),
                ),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read stdin; closing the session");
                    return None;
                }
            };
            let (code, message) = (rejection.code.0, &rejection.message);
            if rejection.answerable {
                tracing::info!(code, %message, "answered a malformed message on stdio");
                self.reply = Some(write_line(
                    self.output.clone(),
                    serde_json::to_vec(&rejection.to_json()),
                ));
            } else {
                tracing::info!(code, %message, "ignored a malformed notification or response on stdio");
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        let framed = self.output.lock().await.take();
        if let Some(mut framed) = framed {
            SinkExt::<Bytes>::flush(&mut framed).await?;
        }
        Ok(())
    }
}

/// One line of input, without its `\n` (and `\r`), or the news that one was too long.
#[derive(Debug, PartialEq)]
enum Line {
    Message(BytesMut),
    TooLong,
}

/// Splits input into lines of at most `max` bytes, holding at most `max` bytes while it looks for
/// the end of one; the rest of a line that is too long is skipped.
struct Lines {
    max: usize,
    /// How far the buffer is known to hold no newline.
    scanned: usize,
    /// Skipping the rest of a line already reported as too long.
    skipping: bool,
}

impl Lines {
    fn new(max: usize) -> Self {
        Self {
            max,
            scanned: 0,
            skipping: false,
        }
    }
}

impl Decoder for Lines {
    type Item = Line;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Line>> {
        loop {
            let Some(newline) = buf[self.scanned..].iter().position(|b| *b == b'\n') else {
                if buf.len() <= self.max {
                    self.scanned = buf.len();
                    return Ok(None);
                }
                buf.clear();
                self.scanned = 0;
                if std::mem::replace(&mut self.skipping, true) {
                    return Ok(None);
                }
                return Ok(Some(Line::TooLong));
            };
            let end = self.scanned + newline;
            self.scanned = 0;
            let mut line = buf.split_to(end + 1);
            if std::mem::take(&mut self.skipping) {
                continue;
            }
            if end > self.max {
                return Ok(Some(Line::TooLong));
            }
            line.truncate(end);
            if line.last() == Some(&b'\r') {
                line.truncate(end - 1);
            }
            return Ok(Some(Line::Message(line)));
        }
    }

    /// A last line without a newline is still a line.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> io::Result<Option<Line>> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        self.scanned = 0;
        if buf.is_empty() || std::mem::take(&mut self.skipping) {
            buf.clear();
            return Ok(None);
        }
        let mut line = buf.split();
        if line.last() == Some(&b'\r') {
            line.truncate(line.len() - 1);
        }
        Ok(Some(Line::Message(line)))
    }
}

#[cfg(test)]
#[path = "stdio_tests.rs"]
mod tests;
