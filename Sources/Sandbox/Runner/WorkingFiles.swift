import CSandbox

extension Sandbox {
    /// The most files one run can be given, the script included (each is a sealed memfd sent
    /// to the sandbox's init with the run).
    public static let maxFilesPerRun = Int(CS_MAX_FILES)

    /// The hook of input files: `files`, at paths relative to the program's working directory,
    /// become files delivered at `workdir/path`. Init writes them into the working directory's
    /// tmpfs (creating their folders) with the run's other files, before the program starts,
    /// as the program's own user: it reads them, and writes its own files beside them. The
    /// server never writes there itself. Refused: an absolute path, `..`, `.` or an empty
    /// segment, and a working directory that is not inside a tmpfs (it could not be written).
    static func placeWorkingFiles(_ files: [SandboxFile], policy: Policy) throws(SandboxError) -> [SandboxFile] {
        guard !files.isEmpty else { return [] }
        let workdir = policy.filesystem.workdir
        guard policy.filesystem.tmpfs.contains(where: { workdir == $0.path || workdir.hasPrefix($0.path + "/") }) else {
            throw .invalidRequest("run: the working directory \(workdir) of policy \(policy.name) is not inside a tmpfs; input files cannot be written there")
        }
        return try files.map { file throws(SandboxError) in
            let segments = file.path.split(separator: "/", omittingEmptySubsequences: false)
            guard !file.path.hasPrefix("/"), !segments.isEmpty,
                  segments.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
                throw .invalidRequest("run: input file path \(file.path) must be relative to the working directory, without '.', '..' or empty segments")
            }
            var placed = file
            placed.path = (workdir == "/" ? "" : workdir) + "/" + file.path
            return placed
        }
    }
}
