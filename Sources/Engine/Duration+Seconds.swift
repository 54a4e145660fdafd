import Foundation

extension Duration {
    /// As seconds, for Date arithmetic.
    var seconds: TimeInterval {
        let c = components
        return TimeInterval(c.seconds) + TimeInterval(c.attoseconds) / 1e18
    }
}
