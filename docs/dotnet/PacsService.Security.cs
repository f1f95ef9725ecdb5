// The generated PacsService proxy, signing every call with a UsernameToken. The namespace is
// the one given to wsdl.exe (/namespace:Pacs) or the Web Reference's name.
using System.Web.Services.Protocols;
using System.Xml;

namespace Pacs
{
    public partial class PacsService
    {
        /// <summary>The system name and password hospital IT gave this PACS.</summary>
        public string WsseUser, WssePassword;
        public bool WsseDigest = true;

        protected override XmlWriter GetWriterForMessage(SoapClientMessage message, int bufferSize)
        {
            message.Headers.Add(HisPacsWs.UsernameTokenHeader.Create(WsseUser, WssePassword, WsseDigest));
            return base.GetWriterForMessage(message, bufferSize);
        }
    }
}
