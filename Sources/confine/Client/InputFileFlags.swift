import Foundation
import Wire

/// `--file LOCAL[:PATH]` (exec run) and `--input LOCAL[:PATH]` (job create/update): local files
/// sent as input files, written at PATH (default: LOCAL's name) in the execution's working
/// directory; as UTF-8 text when they are, else base64; executable when the local file is.
func readInputFiles(_ specs: [String], flag: String) async throws(ClientError) -> [WireInputFile] {
    var files: [WireInputFile] = []
    for spec in specs {
        var local = spec, target: String? = nil
        if let colon = spec.lastIndex(of: ":"), colon != spec.startIndex {
            local = String(spec[..<colon])
            target = String(spec[spec.index(after: colon)...])
        }
        let path = target ?? (local as NSString).lastPathComponent
        guard !path.isEmpty else { throw .usage("\(flag) \(spec): the path in the working directory is empty") }
        let data = try await readInput(local, flag: flag)
        let executable = FileManager.default.isExecutableFile(atPath: local)
        if let text = String(data: data, encoding: .utf8) {
            files.append(WireInputFile(path: path, content: text, executable: executable ? true : nil))
        } else {
            files.append(WireInputFile(path: path, content: data.base64EncodedString(), encoding: "base64", executable: executable ? true : nil))
        }
    }
    return files
}
