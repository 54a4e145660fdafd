import Glibc

/// One output stream: the first `cap` bytes captured (handed to `onOutput`, and kept when
/// `keep`), every byte counted.
struct StreamCapture {
    let stream: OutputStreamName
    let cap: UInt64
    let keep: Bool
    let onOutput: (@Sendable (OutputChunk) -> Void)?
    var kept: [UInt8] = []
    /// Bytes captured so far (kept or not): at most `cap`.
    var captured: UInt64 = 0
    var total: UInt64 = 0
    var eof = false
    var truncated: Bool { total > cap }

    init(stream: OutputStreamName, cap: UInt64, keep: Bool = true, onOutput: (@Sendable (OutputChunk) -> Void)?) {
        self.stream = stream
        self.cap = cap
        self.keep = keep
        self.onOutput = onOutput
    }

    /// Returns true when these bytes pass the cap for the first time.
    mutating func append(_ bytes: ArraySlice<UInt8>) -> Bool {
        let wasTruncated = truncated
        let room = cap > captured ? Int(min(cap - captured, UInt64(Int.max))) : 0
        if room > 0 {
            let part = Array(bytes.prefix(room))
            let offset = captured
            if keep { kept.append(contentsOf: part) }
            captured += UInt64(part.count)
            onOutput?(OutputChunk(stream: stream, offset: offset, bytes: part))
        }
        total += UInt64(bytes.count)
        return truncated && !wasTruncated
    }
}
