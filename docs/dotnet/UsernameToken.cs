// his-pacs-ws for ASMX clients ("Add Web Reference", wsdl.exe): the WS-Security header every
// call carries, and the ServiceFault detail of a SoapException. Copy this file into the
// project beside the generated proxy, with HisService.Security.cs / PacsService.Security.cs.
// C# 5, .NET Framework 2.0 and later.
using System;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Web.Services.Protocols;
using System.Xml;
using System.Xml.Serialization;

namespace HisPacsWs
{
    /// <summary>wsse:Security with one UsernameToken: PasswordDigest (the default) or PasswordText.
    /// Build a new one for every call: the service accepts each Nonce once.</summary>
    [XmlRoot("Security", Namespace = Wsse)]
    [XmlType(Namespace = Wsse)]
    public class UsernameTokenHeader : SoapHeader
    {
        public const string Wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
        public const string Wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
        const string Profile = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0";
        const string Base64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

        [XmlElement("UsernameToken", Namespace = Wsse)]
        public Token UsernameToken;

        [XmlType(Namespace = Wsse)]
        public class Token
        {
            [XmlElement("Username", Namespace = Wsse)] public string Username;
            [XmlElement("Password", Namespace = Wsse)] public Typed Password;
            [XmlElement("Nonce", Namespace = Wsse)] public Encoded Nonce;
            [XmlElement("Created", Namespace = Wsu)] public string Created;
        }

        [XmlType(Namespace = Wsse)]
        public class Typed
        {
            [XmlAttribute("Type")] public string Type;
            [XmlText] public string Value;
        }

        [XmlType(Namespace = Wsse)]
        public class Encoded
        {
            [XmlAttribute("EncodingType")] public string EncodingType;
            [XmlText] public string Value;
        }

        public static UsernameTokenHeader Create(string user, string password, bool digest)
        {
            byte[] nonce = new byte[16];
            using (RandomNumberGenerator random = RandomNumberGenerator.Create()) random.GetBytes(nonce);
            // UTC with Z, whole seconds: the digest covers exactly these characters
            string created = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            string value = password, type = Profile + "#PasswordText";
            if (digest)
            {
                byte[] c = Encoding.UTF8.GetBytes(created), p = Encoding.UTF8.GetBytes(password);
                byte[] all = new byte[nonce.Length + c.Length + p.Length];
                Buffer.BlockCopy(nonce, 0, all, 0, nonce.Length);
                Buffer.BlockCopy(c, 0, all, nonce.Length, c.Length);
                Buffer.BlockCopy(p, 0, all, nonce.Length + c.Length, p.Length);
                using (SHA1 sha1 = SHA1.Create()) value = Convert.ToBase64String(sha1.ComputeHash(all));
                type = Profile + "#PasswordDigest";
            }
            Token token = new Token();
            token.Username = user;
            token.Password = new Typed();
            token.Password.Type = type;
            token.Password.Value = value;
            token.Nonce = new Encoded();
            token.Nonce.EncodingType = Base64;
            token.Nonce.Value = Convert.ToBase64String(nonce);
            token.Created = created;
            UsernameTokenHeader header = new UsernameTokenHeader();
            header.UsernameToken = token;
            return header;
        }
    }

    /// <summary>The detail of every his-pacs-ws fault. ASMX proxies ignore wsdl:fault, so read
    /// it from SoapException.Detail: ServiceFault.From(e).</summary>
    public class ServiceFault
    {
        public const string Namespace = "urn:his-pacs-ws:v1";
        public string Code;
        public string Message;
        public bool Retryable;

        /// <summary>The ServiceFault in the exception's detail, or null (not one of ours).</summary>
        public static ServiceFault From(SoapException e)
        {
            if (e.Detail == null) return null;
            XmlNamespaceManager ns = new XmlNamespaceManager(new NameTable());
            ns.AddNamespace("h", Namespace);
            XmlNode node = e.Detail.SelectSingleNode("h:ServiceFault", ns);
            if (node == null) return null;
            ServiceFault fault = new ServiceFault();
            fault.Code = Text(node, "h:Code", ns);
            fault.Message = Text(node, "h:Message", ns);
            fault.Retryable = XmlConvert.ToBoolean(Text(node, "h:Retryable", ns) ?? "false");
            return fault;
        }

        static string Text(XmlNode node, string path, XmlNamespaceManager ns)
        {
            XmlNode child = node.SelectSingleNode(path, ns);
            return child == null ? null : child.InnerText;
        }
    }
}
