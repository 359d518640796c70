package interop;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * (B) The JDK's own HTTP client as a Java service uses it: {@code HttpClient.newHttpClient()},
 * whose default version is HTTP/2, so on a cleartext URL every request carries
 * {@code Connection: Upgrade, HTTP2-Settings} and {@code Upgrade: h2c}. Its POSTs to register,
 * evaluate and write must be answered 2xx with the effect visible. The same requests with the
 * client pinned to HTTP/1.1 are the control: when only the default client fails, the fault is
 * the h2c upgrade handling, not the request.
 */
class JdkHttpClientTest {
  /** The client a Java service gets by default (HTTP/2 preferred: sends Upgrade: h2c). */
  static final HttpClient DEFAULT = HttpClient.newHttpClient();
  static final HttpClient HTTP11 = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  static Stream<Arguments> clients() {
    return Stream.of(
        Arguments.of("HttpClient.newHttpClient() (HTTP/2 default, Upgrade: h2c)", DEFAULT),
        Arguments.of("HTTP/1.1 control", HTTP11));
  }

  static HttpResponse<String> post(HttpClient client, String path, JsonNode body) throws Exception {
    HttpRequest req = HttpRequest.newBuilder(URI.create(Env.url() + path))
        .timeout(Duration.ofSeconds(30))
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(Env.JSON.writeValueAsString(body)))
        .build();
    return client.send(req, HttpResponse.BodyHandlers.ofString());
  }

  static HttpResponse<String> get(HttpClient client, String path) throws Exception {
    HttpRequest req = HttpRequest.newBuilder(URI.create(Env.url() + path)).timeout(Duration.ofSeconds(30)).GET().build();
    return client.send(req, HttpResponse.BodyHandlers.ofString());
  }

  static String tag(String name) {
    return name.startsWith("HTTP/1.1") ? "h1" : "h2c";
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("clients")
  void registersAService(String name, HttpClient client) throws Exception {
    String service = "jdk-" + tag(name) + "-" + UUID.randomUUID().toString().substring(0, 8);
    ObjectNode body = Env.JSON.createObjectNode();
    body.put("service_name", service);
    body.put("service_url", Env.url());
    body.putObject("metadata").put("team", "interop").put("instance_id", service + "-1");
    HttpResponse<String> r = post(client, "/api/v1/registry/register", body);
    assertEquals(2, r.statusCode() / 100, name + ": POST /api/v1/registry/register answered "
        + r.statusCode() + " " + r.headers().map() + " " + r.body());
    assertEquals(service, Env.parse(r.body()).path("service_name").asText(), r.body());

    HttpResponse<String> g = get(client, "/api/v1/registry/services/" + service);
    assertEquals(200, g.statusCode(), name + ": GET the service: " + g.body());
    assertTrue(g.body().contains(service + "-1") && g.body().contains(Env.url()),
        name + ": the registered instance is listed: " + g.body());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("clients")
  void evaluatesAFlag(String name, HttpClient client) throws Exception {
    ObjectNode body = Env.JSON.createObjectNode();
    body.put("flag_name", "interop-bool-targeted");
    body.put("user_id", "user-1");
    body.put("environment", "development");
    HttpResponse<String> r = post(client, "/api/v1/feature-flags/evaluate", body);
    assertEquals(200, r.statusCode(), name + ": POST /api/v1/feature-flags/evaluate answered "
        + r.statusCode() + " " + r.body());
    JsonNode a = Env.parse(r.body());
    assertEquals(true, a.path("value").asBoolean(false), r.body());
    assertEquals("TARGETING_MATCH", a.path("reason").asText(), r.body());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("clients")
  void writesAConfigurationEntry(String name, HttpClient client) throws Exception {
    String service = "jdk-" + tag(name) + "-" + UUID.randomUUID().toString().substring(0, 8);
    JsonNode value = Env.parse("{\"limit\":12,\"ratio\":0.5,\"hosts\":[\"a\",\"b\"],\"on\":true}");
    ObjectNode body = Env.JSON.createObjectNode();
    body.put("key", "jdk.client.settings");
    body.set("value", value);
    body.put("environment", "development");
    body.put("service_name", service);
    HttpResponse<String> r = post(client, "/api/v1/config", body);
    assertEquals(201, r.statusCode(), name + ": POST /api/v1/config answered " + r.statusCode() + " " + r.body());

    HttpResponse<String> g = get(client, "/api/v1/config/jdk.client.settings?environment=development&service_name=" + service);
    assertEquals(200, g.statusCode(), name + ": GET the entry: " + g.body());
    JsonNode got = Env.parse(g.body());
    assertEquals("service", got.path("scope").asText(), g.body());
    assertTrue(JsonCompare.same(value, got.path("value")), "the value read back: " + got.path("value"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("clients")
  void writesALargeConfigurationEntry(String name, HttpClient client) throws Exception {
    // ~100 KB: the body spans many reads and, over HTTP/2, several DATA frames.
    String service = "jdk-" + tag(name) + "-" + UUID.randomUUID().toString().substring(0, 8);
    String big = "x".repeat(100_000);
    ObjectNode body = Env.JSON.createObjectNode();
    body.put("key", "jdk.client.big");
    body.put("value", big);
    body.put("environment", "development");
    body.put("service_name", service);
    HttpResponse<String> r = post(client, "/api/v1/config", body);
    assertEquals(201, r.statusCode(), name + ": POST /api/v1/config (100 KB) answered " + r.statusCode() + " " + r.body());
    HttpResponse<String> g = get(client, "/api/v1/config/jdk.client.big?environment=development&service_name=" + service);
    assertEquals(200, g.statusCode(), g.body());
    assertEquals(big, Env.parse(g.body()).path("value").asText(), "the 100 KB value read back");
  }
}
