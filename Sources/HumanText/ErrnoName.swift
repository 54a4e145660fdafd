import Glibc

/// Symbolic names of errno values, for messages operators can act on ("ENOENT (No such file or directory)").
public enum ErrnoName {
    /// The errno values with a common name, and their names.
    public static let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO", ENXIO: "ENXIO",
        E2BIG: "E2BIG", ENOEXEC: "ENOEXEC", EBADF: "EBADF", ECHILD: "ECHILD", EAGAIN: "EAGAIN",
        ENOMEM: "ENOMEM", EACCES: "EACCES", EFAULT: "EFAULT", EBUSY: "EBUSY", EEXIST: "EEXIST",
        EXDEV: "EXDEV", ENODEV: "ENODEV", ENOTDIR: "ENOTDIR", EISDIR: "EISDIR", EINVAL: "EINVAL",
        ENFILE: "ENFILE", EMFILE: "EMFILE", ETXTBSY: "ETXTBSY", EFBIG: "EFBIG", ENOSPC: "ENOSPC",
        EROFS: "EROFS", EMLINK: "EMLINK", EPIPE: "EPIPE", ENAMETOOLONG: "ENAMETOOLONG", ENOSYS: "ENOSYS",
        ELOOP: "ELOOP", EOVERFLOW: "EOVERFLOW", EOPNOTSUPP: "EOPNOTSUPP", ECONNREFUSED: "ECONNREFUSED",
        ENETUNREACH: "ENETUNREACH", ETIMEDOUT: "ETIMEDOUT", EADDRINUSE: "EADDRINUSE", ENOTEMPTY: "ENOTEMPTY",
    ]

    /// "ENOENT (No such file or directory)"
    public static func describe(_ err: Int32) -> String {
        let text = String(cString: strerror(err))
        if let name = names[err] { return "\(name) (\(text))" }
        return "errno \(err) (\(text))"
    }

    /// The errno for a name such as "EPERM", if known.
    public static func value(of name: String) -> Int32? {
        names.first { $0.value == name }?.key
    }
}
