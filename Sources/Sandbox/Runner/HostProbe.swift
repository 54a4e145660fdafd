import CSandbox

/// Questions about the host that `confine doctor` asks, answered by trying.
public enum HostProbe {
    /// 0 when a process may create a user namespace here, else the errno of the attempt (made
    /// in a forked child that runs only C code).
    public static func userNamespaceErrno() -> Int32 { cs_probe_user_namespace() }
}
