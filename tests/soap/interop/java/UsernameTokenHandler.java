import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Base64;
import java.util.Collections;
import java.util.Set;

import javax.xml.namespace.QName;
import javax.xml.soap.SOAPElement;
import javax.xml.soap.SOAPEnvelope;
import javax.xml.soap.SOAPException;
import javax.xml.soap.SOAPHeader;
import javax.xml.soap.SOAPHeaderElement;
import javax.xml.ws.handler.MessageContext;
import javax.xml.ws.handler.soap.SOAPHandler;
import javax.xml.ws.handler.soap.SOAPMessageContext;

/**
 * Adds an OASIS WSS 1.0 UsernameToken (PasswordDigest, fresh Nonce and Created) to every
 * outgoing message: Base64(SHA-1(nonce + created + password)). The Security header is
 * marked mustUnderstand, as WSS4J and Metro mark it.
 */
public final class UsernameTokenHandler implements SOAPHandler<SOAPMessageContext> {
    static final String WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    static final String WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    static final String PASSWORD_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest";
    static final String BASE64_BINARY = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";
    private static final SecureRandom RANDOM = new SecureRandom();

    private final String username;
    private final String password;

    public UsernameTokenHandler(String username, String password) {
        this.username = username;
        this.password = password;
    }

    @Override
    public boolean handleMessage(SOAPMessageContext context) {
        if (!(Boolean) context.get(MessageContext.MESSAGE_OUTBOUND_PROPERTY)) {
            return true;
        }
        try {
            byte[] nonce = new byte[16];
            RANDOM.nextBytes(nonce);
            String created = Instant.now().truncatedTo(ChronoUnit.MILLIS).toString();
            MessageDigest sha1 = MessageDigest.getInstance("SHA-1");
            sha1.update(nonce);
            sha1.update(created.getBytes(StandardCharsets.UTF_8));
            sha1.update(password.getBytes(StandardCharsets.UTF_8));
            String digest = Base64.getEncoder().encodeToString(sha1.digest());

            SOAPEnvelope envelope = context.getMessage().getSOAPPart().getEnvelope();
            SOAPHeader header = envelope.getHeader();
            if (header == null) {
                header = envelope.addHeader();
            }
            SOAPHeaderElement security = header.addHeaderElement(new QName(WSSE, "Security", "wsse"));
            security.setMustUnderstand(true);
            security.addNamespaceDeclaration("wsu", WSU);
            SOAPElement token = security.addChildElement("UsernameToken", "wsse");
            token.addChildElement("Username", "wsse").addTextNode(username);
            SOAPElement pwd = token.addChildElement("Password", "wsse");
            pwd.setAttribute("Type", PASSWORD_DIGEST);
            pwd.addTextNode(digest);
            SOAPElement nonceElement = token.addChildElement("Nonce", "wsse");
            nonceElement.setAttribute("EncodingType", BASE64_BINARY);
            nonceElement.addTextNode(Base64.getEncoder().encodeToString(nonce));
            token.addChildElement("Created", "wsu").addTextNode(created);
            context.getMessage().saveChanges();
        } catch (SOAPException | java.security.NoSuchAlgorithmException e) {
            throw new RuntimeException("cannot add the WS-Security header", e);
        }
        return true;
    }

    @Override
    public boolean handleFault(SOAPMessageContext context) {
        return true;
    }

    @Override
    public void close(MessageContext context) {
    }

    @Override
    public Set<QName> getHeaders() {
        return Collections.emptySet();
    }
}
