/// The rule every strict reader of Confine applies (policy files, request bodies, the server's
/// and the client's configuration): a key is one of the known keys, or it is refused with a
/// message naming it, the closest known key when one is a plausible typo, and the keys there
/// are. No reader silently ignores a key (`deny_netwrok`, `concurency` are typos someone must
/// be told about).
public struct KnownKeys: Sendable, Equatable {
    /// The keys, in the order messages list them.
    public let names: [String]

    public init(_ names: [String]) { self.names = names }

    /// Whether `key` is known.
    public func contains(_ key: String) -> Bool { names.contains(key) }

    /// The keys of `keys` that are not known, in their order.
    public func unknown<S: Sequence>(in keys: S) -> [String] where S.Element == String {
        keys.filter { !contains($0) }
    }

    /// `" (did you mean "x"?)"` when a known key is close to `key`, else an empty string.
    public func suggestion(for key: String) -> String { Suggestions.didYouMean(key, in: names) }

    /// The known keys as a list for messages: `a, b, c`.
    public var list: String { names.joined(separator: ", ") }

    /// The refusal of an unknown key: `unknown key (did you mean "x"?); keys are a, b, c`.
    /// - `noun`: what a key is called here (`key`, `field`);
    /// - `shown`: the key as the message shows it, quoted (`"limits.memroy"`), nil to leave it
    ///   out (when the message is already placed at the key);
    /// - `listing`: the words before the list (`keys are`, `the fields are`).
    public func refusal(of key: String, noun: String = "key", shown: String? = nil, listing: String = "keys are") -> String {
        let name = shown.map { " " + $0 } ?? ""
        return "unknown \(noun)\(name)\(suggestion(for: key)); \(listing) \(list)"
    }
}
