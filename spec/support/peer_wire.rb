# frozen_string_literal: true

# The line protocol between a Peer and its process (spec/support/peer_process.rb):
# each message is one Ruby object, Marshal-dumped and base64-encoded on one line.
#
#   request:  [id, command, args, options, store_name]
#   response: [id, :ok, value] or [id, :error, class_name, message, backtrace]
module PeerWire
  module_function

  def encode(message)
    "#{[Marshal.dump(message)].pack("m0")}\n"
  end

  def decode(line)
    Marshal.load(line.chomp.unpack1("m0")) # rubocop:disable Security/MarshalLoad -- our own child processes
  end
end
