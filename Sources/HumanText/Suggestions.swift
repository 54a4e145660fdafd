/// "Did you mean …?" for misspelled keys, limit names, syscalls and policy names.
public enum Suggestions {
    /// The candidate closest to `word`, if it is close enough to be a plausible typo: within a
    /// Damerau–Levenshtein distance of 1 (short words), 2, or 3 (words of 9+ characters), or —
    /// for compound keys such as `deny_netwrok` — one `_`-separated part of `word` is.
    public static func closest(to word: String, in candidates: [String]) -> String? {
        let lower = word.lowercased()
        func allowed(_ s: String) -> Int { s.count <= 4 ? 1 : (s.count <= 8 ? 2 : 3) }
        var best: (String, Int)?
        for candidate in candidates {
            let d = distance(lower, candidate.lowercased())
            if d <= allowed(candidate), d < (best?.1 ?? Int.max) { best = (candidate, d) }
        }
        if let best { return best.0 }
        let parts = lower.split(whereSeparator: { $0 == "_" || $0 == "-" || $0 == "." }).map(String.init)
        guard parts.count > 1 else { return nil }
        for part in parts where part.count >= 4 {
            for candidate in candidates where distance(part, candidate.lowercased()) <= allowed(candidate) - 1 {
                return candidate
            }
        }
        return nil
    }

    /// `" (did you mean "x"?)"` or an empty string.
    public static func didYouMean(_ word: String, in candidates: [String]) -> String {
        closest(to: word, in: candidates).map { " (did you mean \(HumanUnits.quoted($0))?)" } ?? ""
    }

    /// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}
