package interop.configserver;

import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.cloud.config.server.EnableConfigServer;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * The real Spring Cloud Config Server, `native` profile, serving files from one directory.
 * No component scan: it must not pick up the client app's beans (same JVM in the tests).
 */
@SpringBootConfiguration
@EnableAutoConfiguration
@EnableConfigServer
public class RealConfigServerApp {

  /** Starts a server on {@code port} (0 = any free one) serving {@code searchDir}. */
  public static ConfigurableApplicationContext start(int port, String searchDir) {
    return new SpringApplicationBuilder(RealConfigServerApp.class)
        .profiles("native")
        .properties(
            "spring.config.name=realconfigserver",
            "server.port=" + port,
            "server.address=127.0.0.1",
            "spring.application.name=real-config-server",
            "spring.cloud.config.server.native.search-locations=file:" + (searchDir.endsWith("/") ? searchDir : searchDir + "/"),
            "spring.cloud.config.enabled=false",
            "spring.cloud.refresh.enabled=false",
            // spring-cloud-starter-zookeeper-discovery and -loadbalancer share the classpath (issue
            // 16 tests): no ZooKeeper connection, no registration, no LoadBalancer beans
            "spring.cloud.zookeeper.enabled=false",
            "spring.cloud.loadbalancer.enabled=false",
            "management.endpoints.web.exposure.include=health",
            "spring.main.banner-mode=off",
            "logging.level.root=WARN")
        .run();
  }

  /** {@code java -cp … interop.configserver.RealConfigServerApp <port> <dir>}: a standalone server. */
  public static void main(String[] args) {
    start(Integer.parseInt(args[0]), args[1]);
  }
}
