import Testing
import VIPManifest
import VIPModel

/// A bad health-check annotation is refused when the manifest is read, so `metalvip apply` writes nothing.
@Suite struct HealthCheckManifestTests {
    @Test func badAnnotationNamesFileDocumentAndAnnotation() {
        let text = """
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec: {type: LoadBalancer, ports: [{port: 80}]}
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: api
              annotations: {metalvip.io/health-check: "http:/ready", metalvip.io/health-check-timeout: 2s}
            spec: {type: LoadBalancer, ports: [{port: 80}]}
            """
        do {
            let entries = try ManifestReader.read(text, file: "web.yaml")
            Issue.record("accepted: \(entries)")
        } catch {
            #expect("\(error)" == "web.yaml: document 2 (Service \"api\"): metadata.annotations[metalvip.io/health-check-timeout]: "
                    + "2s is longer than the interval (1s): a check must end before the next one starts")
        }
    }

    @Test func goodAnnotationsAreRead() throws {
        let entries = try ManifestReader.read("""
            apiVersion: v1
            kind: Service
            metadata:
              name: web
              annotations:
                metalvip.io/health-check: tcp
                metalvip.io/health-check-interval: 5s
                metalvip.io/health-check-rise: "3"
            spec: {type: LoadBalancer, ports: [{port: 80}]}
            """, file: "web.yaml")
        guard entries.count == 1, case .object(let object) = entries[0], case .service(let service) = object.resource else {
            Issue.record("expected one service, got \(entries)")
            return
        }
        let spec = try #require(try service.healthCheck())
        #expect(spec == HealthCheckSpec(kind: .tcp, interval: .seconds(5), timeout: .milliseconds(500), fall: 2, rise: 3))
    }
}
