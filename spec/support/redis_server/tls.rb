# frozen_string_literal: true

require "openssl"

class RedisServer
  # A RedisServer that speaks TLS only: its certificate and key, the CA it
  # checks clients' certificates against, and whether clients must present
  # one (+auth_clients+). Its own commands (the readiness PING, an ACL
  # SETUSER) trust +ca+ and present the server's certificate, so they work
  # whether or not clients must present one.
  #
  #   RedisServer.new(tls: RedisServer::Tls.new(cert: server.cert, key: server.key, ca: ca.cert))
  Tls = Struct.new(:cert, :key, :ca, :auth_clients, keyword_init: true) do
    # The redis-server arguments that make it listen on +port+ with TLS, and
    # on no plain port.
    def listen_arguments(port)
      ["--port", "0", "--tls-port", port.to_s, "--tls-cert-file", cert, "--tls-key-file", key,
       "--tls-ca-cert-file", ca, "--tls-auth-clients", auth_clients ? "yes" : "no"]
    end

    # +socket+, a TCP connection to the server, with TLS on top (handshake done).
    def wrap(socket)
      context = OpenSSL::SSL::SSLContext.new
      context.set_params(ca_file: ca, cert: OpenSSL::X509::Certificate.new(File.read(cert)),
                         key: OpenSSL::PKey.read(File.read(key)), verify_hostname: false)
      OpenSSL::SSL::SSLSocket.new(socket, context).tap do |tls|
        tls.sync_close = true
        tls.connect
      end
    end
  end
end
