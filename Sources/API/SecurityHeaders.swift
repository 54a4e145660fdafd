import HTTPTypes

/// The headers of every HTML page the server sends (the docs page, the dashboard): a
/// Content-Security-Policy allowing scripts, styles and connections from this server only
/// (no inline script at all; an inline style only by its hash), no framing by any page
/// (`frame-ancestors 'none'` and `X-Frame-Options: DENY`), no MIME sniffing, no referrer.
enum SecurityHeaders {
    static func add(to headers: inout HTTPFields, styleHashes: [String] = []) {
        let styles = (["'self'"] + styleHashes.map { "'sha256-\($0)'" }).joined(separator: " ")
        headers[.contentSecurityPolicy] = "default-src 'none'; script-src 'self'; style-src \(styles); img-src 'self' data:; "
            + "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        headers[HTTPField.Name("Cross-Origin-Opener-Policy")!] = "same-origin"
    }
}
