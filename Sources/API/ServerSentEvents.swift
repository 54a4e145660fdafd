import NIOCore
import Wire

/// Server-Sent Events as they go on the wire (the WHATWG `text/event-stream` format): an event
/// is an `event:` line naming its type, an `id:` line (what a reconnecting client sends back
/// as `Last-Event-ID`), one `data:` line (a JSON document, which never holds a raw line
/// break), and a blank line; a line starting with `:` is a comment clients ignore (the
/// keep-alive). Written into a `ByteBuffer` that is sent when a batch is complete.
enum ServerSentEvents {
    static let contentType = "text/event-stream"

    /// Appends one event whose data is a wire type (`WireJSON`).
    static func write<T: Encodable>(event: String, id: String?, data: T, to buffer: inout ByteBuffer) throws {
        let bytes = try WireJSON.encode(data)
        write(event: event, id: id, to: &buffer) { $0.writeBytes(bytes) }
    }

    /// Appends one event whose `data` line `writeData` writes (one line of JSON).
    static func write(event: String, id: String?, to buffer: inout ByteBuffer, data writeData: (inout ByteBuffer) -> Void) {
        buffer.writeString("event: ")
        buffer.writeString(event)
        if let id {
            buffer.writeString("\nid: ")
            buffer.writeString(id)
        }
        buffer.writeString("\ndata: ")
        writeData(&buffer)
        buffer.writeString("\n\n")
    }

    /// Appends a comment (ignored by clients; keeps idle connections open through proxies).
    static func write(comment: String, to buffer: inout ByteBuffer) {
        buffer.writeString(": ")
        buffer.writeString(comment)
        buffer.writeString("\n\n")
    }

    /// Appends the reconnection delay a client should use, in milliseconds.
    static func write(retryMilliseconds: Int, to buffer: inout ByteBuffer) {
        buffer.writeString("retry: \(retryMilliseconds)\n\n")
    }
}
