/// Every wire type of the API, for the test that holds them and the document to each other
/// (each schema of the document has its type here, and each type its schema).
public enum WireCatalog {
    /// The types, each named as in Swift.
    public static let types: [any Codable.Type] = [
        WireProblem.self, WireJob.self, WireJobBody.self, WireScalar.self, WireRunRequest.self, WireRunAccepted.self,
        WireUsage.self, WireExecution.self, WireExecutionPage.self, WireOutputEvent.self, WireCappedEvent.self,
        WireDeletedEvent.self, WireTokenBody.self, WireToken.self, WireAuditEntry.self, WireAuditPage.self,
        WireRuntime.self, WireHealth.self, WireReady.self, WirePolicy.self, WirePolicyOutput.self, WirePolicyFilesystem.self, WirePolicyMount.self,
        WirePolicyBindMount.self, WirePolicyTmpfs.self, WirePolicySeccomp.self, WirePolicyEnvironment.self, WirePolicyReload.self,
        WireAdHocRunRequest.self, WireInputFile.self, WireInputFileEntry.self,
        WireArtifactList.self, WireArtifact.self, WireSkippedArtifact.self,
        WireBatchRequest.self, WireBatchRun.self, WireBatchAnswer.self, WireBatchResult.self,
    ]
}
