package interop.client;

import java.util.ArrayList;
import java.util.List;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.cloud.context.config.annotation.RefreshScope;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;

/**
 * A plain Spring Boot 3.5 application that takes its configuration from a Spring Cloud Config
 * server with {@code spring.config.import=configserver:} — pointed either at config-service's
 * {@code /config-server} or at a real Spring Cloud Config Server. No component scan: it must not
 * pick up the real server's beans (same JVM in the tests).
 */
@SpringBootConfiguration
@EnableAutoConfiguration
@EnableConfigurationProperties(SvcProperties.class)
public class ClientApp {

  /** A {@code @RefreshScope} bean: rebuilt with the new value after {@code POST /actuator/refresh}. */
  public static class RefreshedMessage {
    private final String message;

    public RefreshedMessage(String message) {
      this.message = message;
    }

    public String message() {
      return message;
    }
  }

  @Bean
  @RefreshScope
  public RefreshedMessage refreshedMessage(@Value("${refresh.message:}") String message) {
    return new RefreshedMessage(message);
  }

  /**
   * Starts the app on {@code port} as {@code application} with {@code profile} active, importing
   * its configuration from the config server at {@code configUri}; fails fast when it cannot.
   */
  public static ConfigurableApplicationContext start(
      String configUri, String application, String profile, int port, String... extraArgs) {
    List<String> args = new ArrayList<>(List.of(
        "--spring.config.name=interop-client",
        "--spring.application.name=" + application,
        "--spring.profiles.active=" + profile,
        "--spring.config.import=configserver:",
        "--spring.cloud.config.uri=" + configUri,
        "--spring.cloud.config.profile=" + profile,
        "--spring.cloud.config.fail-fast=true",
        // Only because spring-cloud-config-server shares this classpath (the tests start the real
        // server in the same JVM): its ConfigServerBootstrapApplicationListener turns the client
        // off (spring.cloud.config.enabled=false) unless told otherwise. A real client lacks it.
        "--spring.cloud.config.enabled=true",
        // spring-cloud-starter-zookeeper-discovery and -loadbalancer share the classpath (issue 16
        // tests): no ZooKeeper connection, no registration, no LoadBalancer beans
        "--spring.cloud.zookeeper.enabled=false",
        "--spring.cloud.loadbalancer.enabled=false",
        "--server.address=127.0.0.1",
        "--server.port=" + port,
        "--management.endpoints.web.exposure.include=refresh,health",
        "--spring.main.banner-mode=off",
        "--logging.level.root=WARN"));
    args.addAll(List.of(extraArgs));
    return new SpringApplicationBuilder(ClientApp.class).run(args.toArray(String[]::new));
  }
}
