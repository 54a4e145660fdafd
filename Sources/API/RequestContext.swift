import Hummingbird
import NIOCore

/// The request context of Confine's router: Hummingbird's core, plus the client's address
/// (for the audit trail).
public struct ConfineRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// The address as people write it (`127.0.0.1`, `::1`), without the port.
    var clientAddress: String? {
        guard let remoteAddress else { return nil }
        return remoteAddress.ipAddress ?? remoteAddress.pathname
    }
}
