package interop;

import interop.configserver.RealConfigServerApp;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * Set-up shared by the test classes (one JVM): the fixture written once to config-service, and
 * one real Spring Cloud Config Server (native profile) serving the same fixture from a
 * temporary directory, closed when the JVM ends.
 */
public final class Servers {
  private Servers() {}

  private static boolean written;
  private static String realUrl;
  private static Path realDir;

  /** Writes {@link Fixture} through the REST API once per JVM. */
  public static synchronized void fixtureWritten() {
    if (!written) {
      Fixture.writeToConfigService();
      written = true;
    }
  }

  /** The real Config Server's URL (started on first use). */
  public static synchronized String realConfigServer() throws IOException {
    if (realUrl == null) {
      realDir = Files.createTempDirectory("interop-native-");
      Fixture.writeNativeLayout(realDir);
      int port = Env.freePort();
      ConfigurableApplicationContext ctx = RealConfigServerApp.start(port, realDir.toString());
      realUrl = "http://127.0.0.1:" + port;
      Runtime.getRuntime().addShutdownHook(new Thread(() -> {
        ctx.close();
        try (Stream<Path> s = Files.walk(realDir)) {
          s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
          // best effort
        }
      }));
    }
    return realUrl;
  }

  public static synchronized Path realDir() {
    return realDir;
  }
}
