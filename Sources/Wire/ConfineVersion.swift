/// Confine's version: what `confine --version` prints and every answer of `confine serve`
/// carries in its `Confine-Version` header (and `Server: Confine/<version>`).
public enum ConfineVersion {
    public static let current = "1.1.0"
}
