use super::*;
use rmcp::model::{ClientRequest, ErrorData, JsonRpcMessage};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

fn lines_of(input: &[u8], max: usize) -> Vec<Line> {
    let mut codec = Lines::new(max);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    // One byte at a time: the decoder must not depend on how reads split the input.
    for byte in input {
        buf.extend_from_slice(&[*byte]);
        while let Some(line) = codec.decode(&mut buf).unwrap() {
            out.push(line);
        }
    }
    while let Some(line) = codec.decode_eof(&mut buf).unwrap() {
        out.push(line);
    }
    out
}

fn message(s: &str) -> Line {
    Line::Message(BytesMut::from(s.as_bytes()))
}

#[test]
fn lines_are_split_on_newlines_and_bounded() {
    assert_eq!(
        lines_of(b"a\r\nbc\n\nlast", 8),
        [message("a"), message("bc"), message(""), message("last")]
    );
    // A line over the limit is reported once and its tail skipped, whether or not its newline
    // is already in the buffer.
    assert_eq!(
        lines_of(b"0123456789abc\nok\n", 8),
        [Line::TooLong, message("ok")]
    );
    let mut codec = Lines::new(8);
    let mut buf = BytesMut::from(&b"0123456789\nok\n"[..]);
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Line::TooLong));
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(message("ok")));
    // An over-long last line without a newline is not delivered in pieces.
    assert_eq!(
        lines_of(b"ok\n0123456789abcdef", 8),
        [message("ok"), Line::TooLong]
    );
    assert_eq!(lines_of(b"12345678\n", 8), [message("12345678")]);
}

/// The transport with its client end: what the client writes, and the lines it reads back.
struct Harness {
    transport: StdioTransport<tokio::io::DuplexStream, tokio::io::DuplexStream>,
    to_server: tokio::io::DuplexStream,
    from_server: tokio::io::Lines<BufReader<tokio::io::DuplexStream>>,
}

fn harness(max: usize) -> Harness {
    let (to_server, server_in) = tokio::io::duplex(1 << 16);
    let (server_out, from_server) = tokio::io::duplex(1 << 16);
    Harness {
        transport: StdioTransport::new(server_in, server_out, max),
        to_server,
        from_server: BufReader::new(from_server).lines(),
    }
}

impl Harness {
    async fn reply(&mut self) -> Value {
        let line = self.from_server.next_line().await.unwrap().unwrap();
        serde_json::from_str(&line).unwrap()
    }

    async fn request(&mut self) -> Value {
        match self.transport.receive().await {
            Some(JsonRpcMessage::Request(request)) => {
                assert!(matches!(request.request, ClientRequest::PingRequest(_)));
                serde_json::to_value(&request.id).unwrap()
            }
            other => panic!("expected a ping request, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn malformed_lines_are_answered_and_the_session_goes_on() {
    let mut h = harness(1 << 20);
    let ping = |id: u32| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
    let input = [
        "not json".to_string(),
        ping(1),
        "[]".into(),
        r#"{"jsonrpc":"2.0","id":5,"method":123}"#.into(),
        // A notification whose params do not fit, and a response: never answered.
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":{}}}"#.into(),
        r#"{"jsonrpc":"2.0","id":1,"error":5}"#.into(),
        "   ".into(),
        r#"{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":5}}"#.into(),
        ping(2),
    ]
    .join("\n")
        + "\n";
    h.to_server.write_all(input.as_bytes()).await.unwrap();
    h.to_server.shutdown().await.unwrap();

    assert_eq!(h.request().await, json!(1));
    let parse = h.reply().await;
    assert_eq!(parse["error"]["code"], -32700, "{parse}");
    assert_eq!(parse["jsonrpc"], "2.0");
    assert!(parse.as_object().unwrap().contains_key("id") && parse["id"].is_null());

    assert_eq!(h.request().await, json!(2));
    let batch = h.reply().await;
    assert_eq!(
        (batch["error"]["code"].clone(), batch["id"].clone()),
        (json!(-32600), Value::Null)
    );
    let bad_method = h.reply().await;
    assert_eq!(
        (
            bad_method["error"]["code"].clone(),
            bad_method["id"].clone()
        ),
        (json!(-32600), json!(5))
    );
    let bad_params = h.reply().await;
    assert_eq!(
        (
            bad_params["error"]["code"].clone(),
            bad_params["id"].clone()
        ),
        (json!(-32602), json!(10))
    );

    assert!(
        h.transport.receive().await.is_none(),
        "end of input ends the session"
    );
    h.transport.close().await.unwrap();
    assert!(
        h.from_server.next_line().await.unwrap().is_none(),
        "nothing else was written"
    );
}

#[tokio::test]
async fn an_over_long_line_is_answered_and_skipped() {
    let mut h = harness(64);
    let long = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"x\":\"{}\"}}\n",
        "y".repeat(100)
    );
    h.to_server.write_all(long.as_bytes()).await.unwrap();
    h.to_server
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n")
        .await
        .unwrap();
    assert_eq!(h.request().await, json!(2));
    let reply = h.reply().await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert!(reply["id"].is_null());
}

#[tokio::test]
async fn replies_and_messages_share_the_output_line_by_line() {
    let mut h = harness(1 << 20);
    let sent = TxJsonRpcMessage::<RoleServer>::error(ErrorData::internal_error("x", None), None);
    h.transport.send(sent).await.unwrap();
    h.to_server.write_all(b"{oops\n").await.unwrap();
    h.to_server.shutdown().await.unwrap();
    assert!(h.transport.receive().await.is_none());
    assert_eq!(h.reply().await["error"]["code"], -32603);
    assert_eq!(h.reply().await["error"]["code"], -32700);
}
