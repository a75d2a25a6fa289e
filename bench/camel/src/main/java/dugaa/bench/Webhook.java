package dugaa.bench;

import java.nio.charset.StandardCharsets;
import java.security.InvalidKeyException;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.camel.Exchange;
import org.apache.camel.Message;

/**
 * What bench/workload.py's {@code render_and_sign} and {@code result} do, in Java: the same JSON
 * field mapping, the same Standard Webhooks signature, the same result record.
 */
final class Webhook {

    static final String SECRET = "whsec_" + Base64.getEncoder()
        .encodeToString("dugaa-bench-secret-0123456789abcd".getBytes(StandardCharsets.US_ASCII));
    static final byte[] KEY = Base64.getDecoder().decode(SECRET.substring("whsec_".length()));
    static final ObjectMapper JSON = new ObjectMapper();
    static final String EVENT = "dugaa.event";

    private final String hookId;

    Webhook(String hookId) {
        this.hookId = hookId;
    }

    /** The consumed CloudEvent, parsed once for every hook. */
    static void parse(Exchange exchange) throws Exception {
        exchange.setProperty(EVENT, JSON.readTree(exchange.getMessage().getBody(byte[].class)));
    }

    void render(Exchange exchange) throws Exception {
        JsonNode event = exchange.getProperty(EVENT, JsonNode.class);
        JsonNode data = event.get("data");
        Map<String, Object> fields = new LinkedHashMap<>();
        fields.put("to", data.get("customer").get("phone").asText());
        fields.put("text", "Order " + data.get("order_id").asText() + " shipped");
        fields.put("sender", "DUGAA");
        fields.put("amount", data.get("total"));
        fields.put("reference", event.get("id").asText());
        byte[] body = JSON.writeValueAsBytes(fields);
        String messageId = event.get("id").asText() + ":" + hookId;
        String timestamp = Long.toString(System.currentTimeMillis() / 1000);
        Message message = exchange.getMessage();
        message.removeHeaders("*");
        message.setHeader(Exchange.CONTENT_TYPE, "application/json");
        message.setHeader("User-Agent", "bench-alternative/1.0");
        message.setHeader("webhook-id", messageId);
        message.setHeader("webhook-timestamp", timestamp);
        message.setHeader("webhook-signature", "v1," + sign(messageId + "." + timestamp + ".", body));
        message.setBody(body);
    }

    void result(Exchange exchange) throws Exception {
        JsonNode event = exchange.getProperty(EVENT, JsonNode.class);
        Integer status = exchange.getMessage().getHeader(Exchange.HTTP_RESPONSE_CODE, Integer.class);
        boolean ok = status != null && status >= 200 && status < 300;
        Map<String, Object> record = new LinkedHashMap<>();
        record.put("event_id", event.get("id").asText());
        record.put("hook_id", hookId);
        record.put("outcome", ok ? "delivered" : "dead_lettered");
        record.put("http_status", status);
        record.put("completed_at", System.currentTimeMillis() / 1000.0);
        Message message = exchange.getMessage();
        message.removeHeaders("*");
        message.setBody(JSON.writeValueAsString(record));
    }

    private static String sign(String prefix, byte[] body)
            throws NoSuchAlgorithmException, InvalidKeyException {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(KEY, "HmacSHA256"));
        mac.update(prefix.getBytes(StandardCharsets.UTF_8));
        return Base64.getEncoder().encodeToString(mac.doFinal(body));
    }
}
