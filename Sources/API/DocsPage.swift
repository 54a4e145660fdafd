import Credentials
import Foundation

/// `/docs`: the OpenAPI document rendered on the server into one readable HTML page — the
/// introduction, every operation by tag (method, path, least role, parameters, body, answers)
/// and every schema with its members — with no script and no third-party asset, so it works
/// offline and under a strict Content-Security-Policy. Rendered once from the shipped
/// document; every text of the document is escaped.
struct DocsPage: Sendable {
    let html: String
    /// The base64 SHA-256 of the page's one inline stylesheet, for its CSP.
    let styleHash: String

    private static let cache: Result<DocsPage, Problem> = {
        Result { () throws(Problem) in DocsPage(document: try OpenAPIDocument.shared().tree) }
    }()

    static func shared() throws(Problem) -> DocsPage { try cache.get() }

    static let methods = ["get", "post", "put", "patch", "delete"]

    static let style = """
        body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fff}
        main{max-width:980px;margin:0 auto;padding:1rem 1.5rem 4rem}
        nav{font-size:.9rem;columns:3 16rem;border-bottom:1px solid #ccd;padding-bottom:1rem}
        nav a{display:block}
        a{color:#0b57b0}a:focus{outline:3px solid #f5a623;outline-offset:2px}
        code,pre{font:13px/1.4 ui-monospace,monospace;background:#f2f4f7;border-radius:3px;padding:0 .2em}
        pre{padding:.6em;overflow:auto}
        section.op{border:1px solid #ccd;border-radius:6px;padding:.2rem 1rem 1rem;margin:1.2rem 0}
        .method{display:inline-block;min-width:4.5em;font-weight:700;text-transform:uppercase;border:2px solid;padding:0 .3em;border-radius:4px;text-align:center}
        .role{font-size:.85rem;color:#444}
        table{border-collapse:collapse;width:100%;font-size:.9rem;margin:.4rem 0}
        th,td{border:1px solid #dde;padding:.25rem .45rem;text-align:left;vertical-align:top}
        th{background:#f2f4f7}
        h2{border-bottom:2px solid #1b1f24;margin-top:2.5rem}
        """

    init(document: JSON) {
        styleHash = Digest.sha256(Data(Self.style.utf8)).base64EncodedString()
        var out = ""
        let info = document["info"]
        let title = info?["title"]?.text ?? "API"
        let version = info?["version"]?.text ?? ""
        out += "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        out += "<title>\(Self.escape(title)) API reference</title>\n<style>\(Self.style)</style>\n</head>\n<body>\n<main>\n"
        out += "<h1>\(Self.escape(title)) API <small>\(Self.escape(version))</small></h1>\n"
        out += "<p>The OpenAPI document: <a href=\"/openapi.json\">/openapi.json</a>, <a href=\"/openapi.yaml\">/openapi.yaml</a>. "
        out += "The dashboard: <a href=\"/ui/\">/ui/</a>.</p>\n"
        out += Self.markdown(info?["description"]?.text ?? "")

        // Operations grouped by their first tag, in the document's tag order.
        var tags: [(String, String)] = []
        if case .array(let list)? = document["tags"] {
            for tag in list { if let name = tag["name"]?.text { tags.append((name, tag["description"]?.text ?? "")) } }
        }
        var byTag: [String: [(method: String, path: String, operation: JSON)]] = [:]
        if case .object(let paths)? = document["paths"] {
            for (path, item) in paths {
                for method in Self.methods {
                    guard let operation = item[method] else { continue }
                    let tag: String
                    if case .array(let names)? = operation["tags"], let first = names.first?.text { tag = first } else { tag = "other" }
                    if !tags.contains(where: { $0.0 == tag }) { tags.append((tag, "")) }
                    byTag[tag, default: []].append((method, path, operation))
                }
            }
        }
        out += "<nav aria-label=\"Operations\">\n"
        for (tag, _) in tags {
            for entry in byTag[tag] ?? [] {
                out += "<a href=\"#\(Self.anchor(entry.method, entry.path))\"><code>\(entry.method.uppercased())</code> \(Self.escape(entry.path))</a>\n"
            }
        }
        out += "<a href=\"#schemas\">Schemas</a>\n</nav>\n"
        for (tag, description) in tags {
            guard let operations = byTag[tag], !operations.isEmpty else { continue }
            out += "<h2 id=\"tag-\(Self.escape(tag))\">\(Self.escape(tag))</h2>\n"
            if !description.isEmpty { out += "<p>\(Self.inline(description))</p>\n" }
            for entry in operations { out += Self.operation(entry.method, entry.path, entry.operation, document: document) }
        }
        out += "<h2 id=\"schemas\">Schemas</h2>\n"
        if case .object(let schemas)? = document["components"]?["schemas"] {
            for (name, schema) in schemas.sorted(by: { $0.0 < $1.0 }) {
                out += "<section id=\"schema-\(Self.escape(name))\">\n<h3>\(Self.escape(name))</h3>\n"
                out += Self.schemaBody(schema)
                out += "</section>\n"
            }
        }
        out += "</main>\n</body>\n</html>\n"
        html = out
    }

    // MARK: Parts

    static func anchor(_ method: String, _ path: String) -> String {
        escape(method + "-" + path.map { $0.isLetter || $0.isNumber ? String($0) : "-" }.joined())
    }

    static func operation(_ method: String, _ path: String, _ operation: JSON, document: JSON) -> String {
        var out = "<section class=\"op\" id=\"\(anchor(method, path))\">\n"
        out += "<h3><span class=\"method\">\(method.uppercased())</span> <code>\(escape(path))</code></h3>\n"
        if let summary = operation["summary"]?.text { out += "<p><strong>\(escape(summary))</strong></p>\n" }
        let role = operation["x-confine-role"]?.text
        let publicSwitch = operation["x-confine-public-switch"]?.text
        var access = role.map { "Least role: <code>\(escape($0))</code>." } ?? "Open: no token needed."
        if let publicSwitch {
            access += " Its server switch: <code>\(escape(publicSwitch))</code> (<code>public_routes</code>/<code>private_routes</code>)."
        }
        out += "<p class=\"role\">\(access)</p>\n"
        out += markdown(operation["description"]?.text ?? "")
        var parameters: [JSON] = []
        if case .array(let list)? = operation["parameters"] { parameters = list.map { resolve($0, in: document) } }
        if !parameters.isEmpty {
            out += "<table><caption>Parameters</caption><tr><th scope=\"col\">name</th><th scope=\"col\">in</th>"
                + "<th scope=\"col\">type</th><th scope=\"col\">description</th></tr>\n"
            for parameter in parameters {
                let required = parameter["required"] == .bool(true) ? " (required)" : ""
                out += "<tr><td><code>\(escape(parameter["name"]?.text ?? ""))</code>\(required)</td>"
                out += "<td>\(escape(parameter["in"]?.text ?? ""))</td><td>\(type(parameter["schema"] ?? .null))</td>"
                out += "<td>\(inline(parameter["description"]?.text ?? ""))</td></tr>\n"
            }
            out += "</table>\n"
        }
        if let body = operation["requestBody"].map({ resolve($0, in: document) }) {
            out += "<h4>Request body\(body["required"] == .bool(true) ? "" : " (optional)")</h4>\n"
            if let description = body["description"]?.text { out += "<p>\(inline(description))</p>\n" }
            if case .object(let contents)? = body["content"] {
                for (mediaType, media) in contents {
                    out += "<p><code>\(escape(mediaType))</code>: \(type(media["schema"] ?? .null))</p>\n"
                }
            }
        }
        if case .object(let responses)? = operation["responses"] {
            out += "<table><caption>Answers</caption><tr><th scope=\"col\">status</th><th scope=\"col\">meaning</th>"
                + "<th scope=\"col\">body</th></tr>\n"
            for (status, response) in responses.sorted(by: { $0.0 < $1.0 }) {
                let resolved = resolve(response, in: document)
                var bodies: [String] = []
                if case .object(let contents)? = resolved["content"] {
                    for (mediaType, media) in contents { bodies.append("<code>\(escape(mediaType))</code> \(type(media["schema"] ?? .null))") }
                }
                out += "<tr><td>\(escape(status))</td><td>\(inline(resolved["description"]?.text ?? ""))</td>"
                out += "<td>\(bodies.joined(separator: "<br>"))</td></tr>\n"
            }
            out += "</table>\n"
        }
        return out + "</section>\n"
    }

    /// A component schema: its description, then its members (or its alternatives, or values).
    static func schemaBody(_ schema: JSON) -> String {
        var out = ""
        if let description = schema["description"]?.text { out += "<p>\(inline(description))</p>\n" }
        guard case .object(let properties)? = schema["properties"], !properties.isEmpty else {
            return out + "<p>\(type(schema))</p>\n"
        }
        var required: Set<String> = []
        if case .array(let names)? = schema["required"] { required = Set(names.compactMap(\.text)) }
        out += "<table><tr><th scope=\"col\">member</th><th scope=\"col\">type</th><th scope=\"col\">description</th></tr>\n"
        for (name, property) in properties {
            let mark = required.contains(name) ? " (required)" : ""
            out += "<tr><td><code>\(escape(name))</code>\(mark)</td><td>\(type(property))</td>"
            out += "<td>\(inline(property["description"]?.text ?? ""))</td></tr>\n"
        }
        out += "</table>\n"
        if schema["additionalProperties"] == .bool(false) { out += "<p>No other members.</p>\n" }
        return out
    }

    /// A schema in a few words of HTML (every text escaped), with links to component schemas.
    static func type(_ schema: JSON) -> String {
        if let ref = schema["$ref"]?.text {
            let name = String(ref.split(separator: "/").last ?? "")
            return "<a href=\"#schema-\(escape(name))\">\(escape(name))</a>"
        }
        for combinator in ["oneOf", "anyOf", "allOf"] {
            if case .array(let parts)? = schema[combinator] {
                let word = combinator == "allOf" ? " and " : " or "
                return parts.map(type).joined(separator: word)
            }
        }
        var words: [String] = []
        switch schema["type"] {
        case .string(let name)?: words.append(escape(name))
        case .array(let names)?: words.append(escape(names.compactMap(\.text).joined(separator: " or ")))
        default: break
        }
        if words.first == "array", let items = schema["items"] { words = ["array of " + type(items)] }
        if let constant = schema["const"] { words.append("= <code>\(escape(constant.literal))</code>") }
        if case .array(let values)? = schema["enum"] {
            words.append("one of " + values.map { "<code>\(escape($0.literal))</code>" }.joined(separator: ", "))
        }
        if let format = schema["format"]?.text { words.append("(\(escape(format)))") }
        for (key, word) in [("minimum", "≥"), ("maximum", "≤"), ("exclusiveMinimum", ">"), ("minLength", "length ≥"),
                            ("maxLength", "length ≤"), ("maxItems", "items ≤")] {
            if let bound = schema[key] { words.append("\(word) \(escape(bound.literal))") }
        }
        if let pattern = schema["pattern"]?.text { words.append("matching <code>\(escape(pattern))</code>") }
        if let value = schema["default"] { words.append("default <code>\(escape(value.literal))</code>") }
        if words.isEmpty { return "any" }
        if words.first?.hasPrefix("object") == true, case .object(let properties)? = schema["properties"], !properties.isEmpty {
            words.append("with " + properties.map { "<code>\(escape($0.0))</code>" }.joined(separator: ", "))
        }
        return words.joined(separator: " ")
    }

    /// A `$ref` to a component, followed (once: components here do not refer to refs).
    static func resolve(_ value: JSON, in document: JSON) -> JSON {
        guard let ref = value["$ref"]?.text, ref.hasPrefix("#/") else { return value }
        var node: JSON? = document
        for part in ref.dropFirst(2).split(separator: "/") { node = node?[String(part)] }
        return node ?? value
    }

    // MARK: Text

    /// `&`, `<`, `>`, `"` and `'` escaped: any text of the document is shown as text.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// The little Markdown the document's descriptions use: `code`, **strong**, escaped first.
    static func inline(_ text: String) -> String {
        var out = ""
        var inCode = false, inStrong = false
        var rest = Substring(escape(text))
        while let first = rest.first {
            if first == "`" {
                out += inCode ? "</code>" : "<code>"
                inCode.toggle()
                rest = rest.dropFirst()
            } else if !inCode, rest.hasPrefix("**") {
                out += inStrong ? "</strong>" : "<strong>"
                inStrong.toggle()
                rest = rest.dropFirst(2)
            } else {
                out.append(first)
                rest = rest.dropFirst()
            }
        }
        if inCode { out += "</code>" }
        if inStrong { out += "</strong>" }
        return out
    }

    /// Paragraphs, `### ` headings and `- ` lists, each line's text through `inline`.
    static func markdown(_ text: String) -> String {
        var out = ""
        var paragraph: [String] = []
        var list: [String] = []
        func flush() {
            if !paragraph.isEmpty { out += "<p>\(inline(paragraph.joined(separator: " ")))</p>\n"; paragraph = [] }
            if !list.isEmpty { out += "<ul>\n" + list.map { "<li>\(inline($0))</li>\n" }.joined() + "</ul>\n"; list = [] }
        }
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty {
                flush()
            } else if line.hasPrefix("#") {
                flush()
                out += "<h3>\(inline(line.drop(while: { $0 == "#" }).trimmingCharacters(in: .whitespaces)))</h3>\n"
            } else if line.hasPrefix("- ") {
                if !paragraph.isEmpty { let kept = list; list = []; flush(); list = kept }
                list.append(String(line.dropFirst(2)))
            } else if !list.isEmpty, raw.hasPrefix("  ") {
                list[list.count - 1] += " " + line
            } else {
                if !list.isEmpty { let kept = paragraph; paragraph = []; flush(); paragraph = kept }
                paragraph.append(line)
            }
        }
        flush()
        return out
    }
}

extension JSON {
    /// The string of a string value.
    var text: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The value as JSON text (`"a"`, `3`, `null`).
    var literal: String {
        if case .string(let s) = self { return s }
        return String(decoding: encoded(), as: UTF8.self)
    }
}
