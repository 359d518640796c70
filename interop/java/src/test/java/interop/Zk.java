package interop;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.function.Supplier;

/**
 * What the ZooKeeper interop tests (issue 16) share: the ensemble and base path the service
 * under test uses ({@code -Dzookeeper.hosts}, {@code -Dzookeeper.basepath}, set by run.sh when
 * the service runs on the local stack's ZooKeeper; empty on the embedded defaults, where these
 * tests are skipped), its health-check interval ({@code -Dinterop.health.interval}), and the
 * registry REST calls they make.
 */
public final class Zk {
  private Zk() {}

  /** The ZooKeeper connect string; empty when the service has no external ZooKeeper. */
  public static String hosts() {
    String h = System.getProperty("zookeeper.hosts", "");
    return h.startsWith("${") ? "" : h.trim();
  }

  /** Skips the calling test (class) unless the service runs on an external ZooKeeper. */
  public static void assumeZookeeper() {
    assumeTrue(!hosts().isEmpty(),
        "no -Dzookeeper.hosts: config-service runs without an external ZooKeeper (embedded run)");
  }

  /** The service's ZOOKEEPER_BASE_PATH, where its instances live and where it reads others'. */
  public static String basePath() {
    String b = System.getProperty("zookeeper.basepath", "");
    if (b.isBlank() || b.startsWith("${")) fail("-Dzookeeper.basepath is not set (run.sh sets it with -Dzookeeper.hosts)");
    return b.trim();
  }

  /** The service's SERVICE_HEALTH_CHECK_INTERVAL in seconds. */
  public static double healthIntervalSeconds() {
    String v = System.getProperty("interop.health.interval", "");
    if (v.isBlank() || v.startsWith("${")) fail("-Dinterop.health.interval is not set (run.sh sets it with -Dzookeeper.hosts)");
    return Double.parseDouble(v.trim());
  }

  /** A service name no earlier run used (the base path is shared by all runs on the stack). */
  public static String uniqueName(String prefix) {
    return prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
  }

  static String registry() {
    return Env.url() + "/api/v1/registry";
  }

  /** POST /register; answers the instance_id. Fails the test unless 200/201. */
  public static String register(String service, String serviceUrl, String healthCheckUrl) {
    ObjectNode body = Env.JSON.createObjectNode();
    body.put("service_name", service);
    body.put("service_url", serviceUrl);
    if (healthCheckUrl != null) body.put("health_check_url", healthCheckUrl);
    HttpResponse<String> r = Env.send("POST", registry() + "/register", body);
    if (r.statusCode() != 200 && r.statusCode() != 201) fail("register " + service + " answered " + r.statusCode() + ": " + r.body());
    String id = Env.parse(r.body()).path("instance_id").asText("");
    if (id.isEmpty()) fail("register " + service + ": no instance_id in " + r.body());
    return id;
  }

  /** POST /deregister; answers the response (any status). */
  public static HttpResponse<String> deregister(String service, String instanceId) {
    ObjectNode body = Env.JSON.createObjectNode();
    body.put("service_name", service);
    body.put("instance_id", instanceId);
    return Env.send("POST", registry() + "/deregister", body);
  }

  /** Deregisters, for clean-up: never throws. */
  public static void deregisterQuietly(String service, String instanceId) {
    if (instanceId == null) return;
    try {
      HttpResponse<String> r = deregister(service, instanceId);
      if (r.statusCode() != 200 && r.statusCode() != 404) {
        System.err.println("[interop] clean-up: deregister " + service + "/" + instanceId + " answered " + r.statusCode() + ": " + r.body());
      }
    } catch (RuntimeException e) {
      System.err.println("[interop] clean-up: deregister " + service + "/" + instanceId + ": " + e);
    }
  }

  /** The instances GET /services lists for {@code service} (empty when it is not listed). */
  public static List<JsonNode> listed(String service) {
    HttpResponse<String> r = Env.get(registry() + "/services");
    if (r.statusCode() != 200) fail("GET /api/v1/registry/services answered " + r.statusCode() + ": " + r.body());
    List<JsonNode> out = new ArrayList<>();
    for (JsonNode s : Env.parse(r.body())) {
      if (service.equals(s.path("service_name").asText())) s.path("instances").forEach(out::add);
    }
    return out;
  }

  /** The instances GET /discover/{service} answers (healthy only; empty on 404). */
  public static List<JsonNode> discovered(String service) {
    HttpResponse<String> r = Env.get(registry() + "/discover/" + Env.enc(service));
    List<JsonNode> out = new ArrayList<>();
    if (r.statusCode() == 404) return out;
    if (r.statusCode() != 200) fail("GET discover/" + service + " answered " + r.statusCode() + ": " + r.body());
    Env.parse(r.body()).path("instances").forEach(out::add);
    return out;
  }

  /** The instance_id of each instance. */
  public static List<String> ids(List<JsonNode> instances) {
    List<String> out = new ArrayList<>();
    for (JsonNode i : instances) out.add(i.path("instance_id").asText());
    return out;
  }

  /** The instance of {@code id} in {@code instances}, or null. */
  public static JsonNode byId(List<JsonNode> instances, String id) {
    for (JsonNode i : instances) if (id.equals(i.path("instance_id").asText())) return i;
    return null;
  }

  /**
   * Polls {@code done} every {@code pollMs} until it answers true; answers the milliseconds that
   * took. Fails with {@code what} and {@code state}'s last view after {@code timeoutMs}.
   */
  public static long await(String what, long timeoutMs, long pollMs, Supplier<Boolean> done, Supplier<Object> state) {
    long start = System.nanoTime();
    while (true) {
      if (Boolean.TRUE.equals(done.get())) return (System.nanoTime() - start) / 1_000_000;
      if ((System.nanoTime() - start) / 1_000_000 > timeoutMs) {
        fail(what + ": not after " + timeoutMs + " ms; last: " + state.get());
      }
      try {
        Thread.sleep(pollMs);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new RuntimeException(e);
      }
    }
  }

  /**
   * ZooKeeper's and Curator's client loggers at WARN for a test's own Curator client (logback
   * logs INFO by default until a Spring app sets logging.level.root=WARN).
   */
  public static void quietClientLogs() {
    for (String name : new String[] {"org.apache.zookeeper", "org.apache.curator"}) {
      ((ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(name)).setLevel(ch.qos.logback.classic.Level.WARN);
    }
  }

  /** Fails unless {@code ms} is at most {@code limitMs}, naming what was measured. */
  public static void assertWithin(String what, long ms, long limitMs) {
    System.out.println("[interop] " + what + ": " + ms + " ms (limit " + limitMs + " ms)");
    assertTrue(ms <= limitMs, what + " took " + ms + " ms, more than " + limitMs + " ms");
  }
}
