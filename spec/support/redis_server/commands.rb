# frozen_string_literal: true

require "socket"

class RedisServer
  # Talking to a RedisServer: its URL for a client, and single commands in the
  # Redis protocol over a fresh connection, for what needs no client: the
  # PING that tells whether the server is ready, a CONFIG SET before a
  # benchmark.
  module Commands
    # The URL of database +db+ on this server: redis://, or rediss:// with TLS.
    def url(db = 0)
      "#{tls ? "rediss" : "redis"}://127.0.0.1:#{port}/#{db}"
    end

    # Sends one command over a fresh connection (as the default user) and
    # returns the raw reply line.
    def command(*args)
      request = args.map(&:to_s).each_with_object(+"*#{args.size}\r\n") { |a, s| s << "$#{a.bytesize}\r\n#{a}\r\n" }
      TCPSocket.open("127.0.0.1", port) do |tcp|
        socket = tls ? tls.wrap(tcp) : tcp
        socket.write(request)
        socket.gets&.chomp
      ensure
        socket&.close
      end
    end

    private

    def ping
      command("PING")
    rescue SystemCallError, IOError
      nil
    end
  end
end
