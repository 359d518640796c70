package interop.zkapp;

import java.util.ArrayList;
import java.util.List;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * A plain Spring Boot 3.5 web application (spring-boot-starter-web + actuator) that registers
 * itself in ZooKeeper with spring-cloud-starter-zookeeper-discovery, exactly as any Spring Cloud
 * Zookeeper service does: an ephemeral Curator x-discovery znode {@code <root>/<name>/<id>} with
 * address 127.0.0.1 and its HTTP port, removed again when the context closes. No component scan:
 * it must not pick up the suite's other apps (same JVM in the tests).
 */
@SpringBootConfiguration
@EnableAutoConfiguration
public class ZkWebApp {

  /**
   * Starts the app as {@code name} on 127.0.0.1:{@code port}, registered under {@code root} of
   * ZooKeeper {@code connectString} with a session of {@code sessionTimeoutMs}.
   */
  public static ConfigurableApplicationContext start(
      String connectString, String root, String name, int port, long sessionTimeoutMs, String... extraArgs) {
    List<String> args = new ArrayList<>(List.of(
        "--spring.config.name=interop-zkweb",
        "--spring.application.name=" + name,
        "--server.address=127.0.0.1",
        "--server.port=" + port,
        // spring-cloud-config-server/-client share the classpath: no config import here
        "--spring.cloud.config.enabled=false",
        "--spring.cloud.zookeeper.connect-string=" + connectString,
        "--spring.cloud.zookeeper.session-timeout=" + sessionTimeoutMs + "ms",
        "--spring.cloud.zookeeper.connection-timeout=" + Math.min(sessionTimeoutMs, 5_000) + "ms",
        "--spring.cloud.zookeeper.discovery.root=" + root,
        "--spring.cloud.zookeeper.discovery.register=true",
        // the znode's address: the loopback address the app listens on, not the host's name
        "--spring.cloud.zookeeper.discovery.instance-host=127.0.0.1",
        "--spring.cloud.zookeeper.discovery.prefer-ip-address=false",
        "--management.endpoints.web.exposure.include=health",
        // the app calls nobody: no LoadBalancer instance cache (and no warning about its kind)
        "--spring.cloud.loadbalancer.cache.enabled=false",
        "--spring.main.banner-mode=off",
        "--logging.level.root=WARN"));
    args.addAll(List.of(extraArgs));
    return new SpringApplicationBuilder(ZkWebApp.class).run(args.toArray(String[]::new));
  }

  /** {@code java -cp … interop.zkapp.ZkWebApp <connectString> <root> <name> <port>}: a standalone app. */
  public static void main(String[] args) {
    start(args[0], args[1], args[2], Integer.parseInt(args[3]), 10_000);
  }
}
