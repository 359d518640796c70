package interop;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A small HTTP service in the test JVM (com.sun.net.httpserver on a free port of the suite's
 * range, 127.0.0.1): {@code GET /health} answers 200 or 503 (switchable with
 * {@link #healthy(boolean)}), {@code GET /hello} answers {@code hello from <port>}, anything
 * else 404 (so config-service's additional probes, /ready and /live, count as "not provided").
 */
public final class StubService implements AutoCloseable {
  private final HttpServer server;
  private final ExecutorService pool = Executors.newFixedThreadPool(4, r -> {
    Thread t = new Thread(r, "stub-service");
    t.setDaemon(true);
    return t;
  });
  private final AtomicInteger healthStatus;
  private final int port;

  public StubService(boolean healthy) throws IOException {
    this.healthStatus = new AtomicInteger(healthy ? 200 : 503);
    this.port = Env.freePort();
    this.server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 16);
    server.createContext("/health", ex -> answer(ex, healthStatus.get(), healthStatus.get() == 200 ? "{\"status\":\"UP\"}" : "{\"status\":\"DOWN\"}"));
    server.createContext("/hello", ex -> answer(ex, 200, "hello from " + port));
    server.setExecutor(pool);
    server.start();
  }

  private static void answer(HttpExchange ex, int status, String body) throws IOException {
    try (ex) {
      // the contexts match by prefix: /healthz or /hello/x are not ours
      String path = ex.getRequestURI().getPath();
      if (!path.equals(ex.getHttpContext().getPath())) {
        ex.sendResponseHeaders(404, -1);
        return;
      }
      byte[] b = body.getBytes(StandardCharsets.UTF_8);
      ex.getResponseHeaders().set("Content-Type", body.startsWith("{") ? "application/json" : "text/plain; charset=utf-8");
      ex.sendResponseHeaders(status, b.length);
      try (OutputStream out = ex.getResponseBody()) {
        out.write(b);
      }
    }
  }

  /** Switches what /health answers: 200 (true) or 503 (false). */
  public void healthy(boolean healthy) {
    healthStatus.set(healthy ? 200 : 503);
  }

  public int port() {
    return port;
  }

  /** http://127.0.0.1:&lt;port&gt; */
  public String url() {
    return "http://127.0.0.1:" + port;
  }

  @Override
  public void close() {
    server.stop(0);
    pool.shutdownNow();
  }
}
