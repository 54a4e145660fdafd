import Foundation
import HumanText
import Yams

/// The client's settings file in the user's home: `$XDG_CONFIG_HOME/confine/config.yaml`, else
/// `~/.config/confine/config.yaml`, with `server:` and `token:` (both optional). A file holding
/// a token must be readable by its owner only (as ssh insists for keys); unknown keys are
/// refused by name. Every refusal is a `ClientError.configuration` (exit 78, EX_CONFIG).
struct ClientConfigFile {
    var server: String?
    var token: String?

    static var path: String {
        let environment = ProcessInfo.processInfo.environment
        if let xdg = environment["XDG_CONFIG_HOME"], !xdg.isEmpty { return xdg + "/confine/config.yaml" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.config/confine/config.yaml"
    }

    static var displayPath: String { "~/.config/confine/config.yaml" }

    /// The file's settings; none when it does not exist.
    static func load(path: String = ClientConfigFile.path) throws(ClientError) -> ClientConfigFile {
        guard FileManager.default.fileExists(atPath: path) else { return ClientConfigFile() }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .configuration("\(path): cannot read it: \(error.localizedDescription)")
        }
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch { throw .configuration("\(path): not valid YAML: \(error)") }
        guard let node else { return ClientConfigFile() }
        guard let mapping = node.mapping else { throw .configuration("\(path): expected a mapping with server: and token:") }
        var file = ClientConfigFile()
        for (key, value) in mapping {
            switch key.string ?? "" {
            case "server": file.server = value.string
            case "token": file.token = value.string
            default:
                let name = key.string ?? "\(key)"
                throw .configuration("\(path): " + KnownKeys(["server", "token"]).refusal(of: name, shown: "\"\(name)\""))
            }
        }
        if file.token != nil {
            var info = stat()
            if stat(path, &info) == 0, info.st_mode & 0o077 != 0 {
                throw .configuration("\(path) holds a token and is readable by others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 \(path)")
            }
        }
        return file
    }
}
