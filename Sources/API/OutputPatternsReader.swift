/// Reads the `outputs` of a body (a job's, a run's): glob patterns of files to collect from the
/// working directory after the program ends (`result.json`, `plots/*.png`; `*`, `?` and `[…]`
/// within one path segment). Relative, without `..`, `.` or empty segments, at most
/// `maxPatterns` of 256 bytes each; every refusal a 422 naming `outputs[i]`.
extension BodyReader {
    static let maxOutputPatterns = 32

    func outputPatterns(_ key: String = "outputs") throws(Problem) -> [String]? {
        guard let patterns = try strings(key) else { return nil }
        if patterns.count > Self.maxOutputPatterns {
            throw .validation(field(key), "\(field(key)): \(patterns.count) patterns; at most \(Self.maxOutputPatterns)")
        }
        for (i, pattern) in patterns.enumerated() {
            let at = "\(field(key))[\(i)]"
            if let why = Self.patternProblem(pattern) { throw .validation(at, "\(at) \"\(pattern)\" \(why)") }
        }
        return patterns
    }

    static func patternProblem(_ pattern: String) -> String? {
        if pattern.isEmpty { return "is empty" }
        if pattern.hasPrefix("/") { return "is absolute; give a pattern relative to the working directory (e.g. plots/*.png)" }
        if pattern.utf8.count > 256 { return "is \(pattern.utf8.count) bytes long; at most 256" }
        if pattern.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) { return "contains a control character" }
        let segments = pattern.split(separator: "/", omittingEmptySubsequences: false)
        if segments.contains("..") { return "contains '..'; only files inside the working directory are collected" }
        if segments.contains(where: { $0.isEmpty || $0 == "." }) { return "is not normalised (an empty or '.' segment)" }
        return nil
    }
}
