# frozen_string_literal: true

require "socket"

class RedisServer
  # Talking to a RedisServer: its URL for a client, and single commands in the
  # Redis protocol over a fresh connection, for what needs no client: the
  # PING that tells whether the server is ready, a CONFIG SET before a
  # benchmark.
  module Commands
    # The redis:// URL of database +db+ on this server.
    def url(db = 0)
      "redis://127.0.0.1:#{port}/#{db}"
    end

    # Sends one command over a fresh connection and returns the raw reply line.
    def command(*args)
      request = args.map(&:to_s).each_with_object(+"*#{args.size}\r\n") { |a, s| s << "$#{a.bytesize}\r\n#{a}\r\n" }
      TCPSocket.open("127.0.0.1", port) do |socket|
        socket.write(request)
        socket.gets&.chomp
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
