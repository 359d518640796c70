package interop;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.Yaml;

/**
 * The configuration both servers hold: each entry is written through config-service's REST API
 * and, the same value, into {@code {application}-{profile}.yml} (service entries) or
 * {@code application-{profile}.yml} (global entries) for the real Spring Cloud Config Server.
 * An entry's key is a YAML top-level key (dots included), its value the YAML value: Spring
 * flattens both the same way, so the two servers must answer the same property names.
 */
public final class Fixture {
  private Fixture() {}

  /** The application compared property by property with the real server (profiles below). */
  public static final String APP = "interop-app";
  /** The application the Spring Boot client runs as. */
  public static final String BOOT_APP = "interop-boot";
  public static final String PROFILES = "development,staging";

  /** One entry: environment, service (null = global), key, JSON value. */
  public record Entry(String environment, String service, String key, JsonNode value) {}

  private static final List<Entry> ENTRIES = new ArrayList<>();

  private static void add(String env, String service, String key, String json) {
    ENTRIES.add(new Entry(env, service, key, Env.parse(json)));
  }

  /** The initial value of refresh.message (unique per run, so a refresh always sees a change). */
  public static final String REFRESH_V1 = "v1-" + Long.toHexString(System.nanoTime());

  static {
    // --- global development (Spring: application-development.yml)
    add("development", null, "greeting", "\"hello from global development\"");
    add("development", null, "db", "{\"pool\":{\"size\":10,\"timeout-ms\":1500},\"host\":\"dev-db.internal\"}");
    add("development", null, "feature.ratio", "0.25");
    add("development", null, "limits", "{\"max\":100,\"burst\":5}");
    add("development", null, "svc", "{\"greeting\":\"hello from global svc\",\"pool\":{\"size\":10,\"timeout-ms\":1500},"
        + "\"regions\":[\"eu-west\",\"us-east\"]}");
    // --- interop-app development (Spring: interop-app-development.yml)
    add("development", APP, "greeting", "\"hello from interop-app development\"");   // overrides the global key
    add("development", APP, "db.pool.size", "25");                                   // overrides a part of a global object
    add("development", APP, "limits", "{\"max\":250}");
    add("development", APP, "nested", "{\"a\":{\"b\":{\"c\":\"deep\",\"n\":1,\"on\":false}}}");
    add("development", APP, "tags", "[\"alpha\",\"beta\",\"gamma\"]");
    add("development", APP, "servers", "[{\"host\":\"a.example\",\"port\":8080},"
        + "{\"host\":\"b.example\",\"port\":8081,\"tls\":true,\"labels\":[\"x\",\"y\"]}]");
    add("development", APP, "matrix", "[[1,2],[3]]");
    add("development", APP, "count", "42");
    add("development", APP, "negative", "-7");
    add("development", APP, "maxSafe", "9007199254740991");
    add("development", APP, "ratio", "1.5");
    add("development", APP, "enabled", "true");
    add("development", APP, "version", "\"1.10\"");
    add("development", APP, "zip", "\"007\"");
    add("development", APP, "boolString", "\"true\"");
    add("development", APP, "emptyString", "\"\"");
    add("development", APP, "nothing", "null");
    add("development", APP, "emptyList", "[]");
    add("development", APP, "emptyMap", "{}");
    add("development", APP, "holes", "{\"a\":null,\"b\":[],\"c\":{},\"d\":1}");
    add("development", APP, "unicode", "\"gr\u00fc\u00dfe \u2603\"");
    // --- global staging (Spring: application-staging.yml)
    add("staging", null, "greeting", "\"hello from global staging\"");
    add("staging", null, "db", "{\"host\":\"staging-db.internal\"}");
    add("staging", null, "staging.only", "true");
    // --- interop-app staging (Spring: interop-app-staging.yml)
    add("staging", APP, "count", "7");
    add("staging", APP, "enabled", "false");
    add("staging", APP, "tags", "[\"one\"]");
    add("staging", APP, "servers", "[{\"host\":\"s.example\",\"port\":9090}]");
    add("staging", APP, "ratio", "0.125");
    // --- interop-boot development: what the Spring Boot client reads (svc.* over the global svc)
    add("development", BOOT_APP, "svc.greeting", "\"hello from interop-boot\"");
    add("development", BOOT_APP, "svc.pool.size", "32");
    add("development", BOOT_APP, "svc.ratio", "0.75");
    add("development", BOOT_APP, "svc.endpoints", "[{\"name\":\"a\",\"port\":8080},{\"name\":\"b\",\"port\":8081,\"tls\":true}]");
    add("development", BOOT_APP, "refresh.message", "\"" + REFRESH_V1 + "\"");
  }

  public static List<Entry> entries() {
    return List.copyOf(ENTRIES);
  }

  /** Writes every entry through config-service's REST API (POST, PUT if it exists). */
  public static void writeToConfigService() {
    for (Entry e : ENTRIES) Env.putConfig(e.environment(), e.service(), e.key(), e.value());
  }

  /** Writes the same entries as the real server's native layout into {@code dir}. */
  public static void writeNativeLayout(Path dir) throws IOException {
    Map<String, Map<String, Object>> files = new LinkedHashMap<>();
    for (Entry e : ENTRIES) {
      String file = (e.service() == null ? "application" : e.service()) + "-" + e.environment() + ".yml";
      Object value = Env.JSON.convertValue(e.value(), new TypeReference<Object>() {});
      files.computeIfAbsent(file, f -> new LinkedHashMap<>()).put(e.key(), value);
    }
    DumperOptions o = new DumperOptions();
    o.setDefaultFlowStyle(DumperOptions.FlowStyle.BLOCK);
    o.setAllowUnicode(true);
    Yaml yaml = new Yaml(o);
    Files.createDirectories(dir);
    for (var f : files.entrySet()) {
      Files.writeString(dir.resolve(f.getKey()), yaml.dump(f.getValue()));
    }
  }
}
