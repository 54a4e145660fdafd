import Foundation

// Retention: finished executions pruned by count per job and by age (`retention` settings).

extension Engine {
    func applyRetention() async {
        guard configuration.keepPerJob != nil || configuration.maxAge != nil else { return }
        let olderThan = configuration.maxAge.map { Date() - $0.seconds }
        do { _ = try await store.prune(keepPerJob: configuration.keepPerJob, olderThan: olderThan) } catch {
            configuration.logger.warning("retention failed: \(error)")
        }
    }
}
