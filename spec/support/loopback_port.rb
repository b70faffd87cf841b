# frozen_string_literal: true

require "socket"

# A loopback port nothing listens on right now (the kernel's pick, released at
# once): for a server a spec is about to start, or for a connection that must
# be refused (as long as nobody takes the port meanwhile).
module LoopbackPort
  module_function

  def free
    server = TCPServer.new("127.0.0.1", 0)
    server.addr[1]
  ensure
    server&.close
  end
end
