package interop;

import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * What every test shares: the URL of the config-service under test ({@code -Dconfigservice.url},
 * set by run.sh), free ports in the suite's range, and an HTTP/1.1 client for set-up writes (so
 * set-up does not depend on what the tests of the JDK's default HTTP/2 client check).
 */
public final class Env {
  private Env() {}

  public static final ObjectMapper JSON = new ObjectMapper();

  /** The ports this suite may use: run.sh gives the service one of them too. */
  public static final int PORT_MIN = Integer.getInteger("interop.port.min", 18700);
  public static final int PORT_MAX = Integer.getInteger("interop.port.max", 18799);

  private static final HttpClient SETUP = HttpClient.newBuilder()
      .version(HttpClient.Version.HTTP_1_1)
      .connectTimeout(Duration.ofSeconds(5))
      .build();

  /** The service's base URL, without a trailing slash. */
  public static String url() {
    String u = System.getProperty("configservice.url", System.getenv("CONFIGSERVICE_URL"));
    if (u == null || u.isBlank() || u.startsWith("${")) {
      fail("configservice.url is not set: run the suite with `bash interop/java/run.sh`, or pass "
          + "-Dconfigservice.url=http://127.0.0.1:<port> to mvn with the service running");
    }
    return u.endsWith("/") ? u.substring(0, u.length() - 1) : u;
  }

  /** The secured instance (API_TOKENS set) run.sh starts beside the main one. */
  public static String securedUrl() {
    String u = System.getProperty("configservice.secured.url");
    if (u == null || u.isBlank() || u.startsWith("${")) {
      fail("configservice.secured.url is not set: run the suite with `bash interop/java/run.sh`");
    }
    return u.endsWith("/") ? u.substring(0, u.length() - 1) : u;
  }

  /** A token of the secured instance: admin, reader (config:read), secrets (config:read, secrets:read). */
  public static String token(String which) {
    String t = System.getProperty("configservice.token." + which);
    if (t == null || t.isBlank() || t.startsWith("${")) fail("configservice.token." + which + " is not set");
    return t;
  }

  /** A port of [PORT_MIN, PORT_MAX] that nothing listens on now (tried from a random start). */
  public static synchronized int freePort() {
    int span = PORT_MAX - PORT_MIN + 1;
    int start = (int) (Math.random() * span);
    for (int i = 0; i < span; i++) {
      int p = PORT_MIN + (start + i) % span;
      if (p == Integer.getInteger("interop.service.port", -1) || p == Integer.getInteger("interop.secured.port", -1)) continue;
      try (ServerSocket s = new ServerSocket(p, 1, InetAddress.getByName("127.0.0.1"))) {
        s.setReuseAddress(true);
        return p;
      } catch (IOException busy) {
        // next
      }
    }
    throw new IllegalStateException("no free port in " + PORT_MIN + "-" + PORT_MAX);
  }

  public static String enc(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }

  /** A set-up request over HTTP/1.1; answers the response (any status). */
  public static HttpResponse<String> send(String method, String url, Object body) {
    return send(method, url, body, null);
  }

  /** The same with an Authorization header (null: none). */
  public static HttpResponse<String> send(String method, String url, Object body, String authorization) {
    try {
      HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30));
      if (authorization != null) b.header("Authorization", authorization);
      if (body == null) {
        b.method(method, HttpRequest.BodyPublishers.noBody());
      } else {
        b.header("Content-Type", "application/json")
            .method(method, HttpRequest.BodyPublishers.ofString(
                body instanceof String s ? s : JSON.writeValueAsString(body)));
      }
      return SETUP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    } catch (IOException e) {
      throw new RuntimeException(method + " " + url + ": " + e, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RuntimeException(e);
    }
  }

  public static HttpResponse<String> get(String url) {
    return send("GET", url, null);
  }

  public static JsonNode parse(String text) {
    try {
      return JSON.readTree(text);
    } catch (IOException e) {
      throw new RuntimeException("not JSON: " + text, e);
    }
  }

  /**
   * Writes one configuration entry through the REST API: POST, or PUT when it exists already
   * (a re-run against the same database). Fails the test on any other answer.
   */
  public static void putConfig(String environment, String service, String key, JsonNode value) {
    var body = JSON.createObjectNode();
    body.put("key", key);
    body.set("value", value);
    body.put("environment", environment);
    if (service != null) body.put("service_name", service);
    HttpResponse<String> r = send("POST", url() + "/api/v1/config", body);
    if (r.statusCode() == 409) {
      body.remove("key");
      r = send("PUT", url() + "/api/v1/config/" + enc(key), body);
    }
    if (r.statusCode() / 100 != 2) {
      fail("writing " + environment + "/" + (service == null ? "(global)" : service) + "/" + key
          + " answered " + r.statusCode() + ": " + r.body());
    }
  }
}
