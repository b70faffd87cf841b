# frozen_string_literal: true

require "io/wait"
require_relative "../peer_wire"

class Peer
  # A Peer's side of the wire (PeerWire): one request in flight at a time,
  # each response awaited with a deadline, and an exception raised in the
  # peer raised again here (see Peer). A peer that missed a deadline or lost
  # its connection is marked broken, and every later request fails at once:
  # a late response would otherwise be taken for the next request's.
  module Requests
    # Sends a request and waits up to +within+ seconds for its response.
    def call(command, *args, store: :main, within: DEFAULT_WITHIN, **options)
      call_async(command, *args, store: store, **options)
      await(within)
    end

    # Sends a request without waiting; #await collects the response. One request
    # at a time per peer.
    def call_async(command, *args, store: :main, **options)
      raise Error, "#{self}: unusable after #{@broken}" if @broken
      raise Error, "#{self}: a request is already waiting for its response" if @awaiting

      @awaiting = (@next_id += 1)
      @socket.write(PeerWire.encode([@awaiting, command, args, options, store]))
      self
    rescue SystemCallError, IOError => e
      broken!("#{e.class} sending #{command}")
    end

    # The response to the request sent by #call_async, waiting up to +within+ s.
    def await(within = DEFAULT_WITHIN)
      raise Error, "#{self}: nothing was asked" unless @awaiting

      id, status, *rest = PeerWire.decode(read_line(monotonic + within))
      raise Error, "#{self}: response #{id} to request #{@awaiting}" unless id == @awaiting

      @awaiting = nil
      return rest.first if status == :ok

      raise remote_error(*rest)
    end

    private

    def read_line(deadline)
      loop do
        if (newline = @buffer.index("\n"))
          return @buffer.slice!(0..newline)
        end

        left = deadline - monotonic
        broken!("no response within the deadline") if left <= 0
        next unless @socket.wait_readable(left)

        chunk = @socket.read_nonblock(1 << 16, exception: false)
        broken!("the process closed the connection (exited?)") if chunk.nil?
        @buffer << chunk unless chunk == :wait_readable
      end
    rescue SystemCallError, IOError => e
      broken!("#{e.class}: #{e.message}")
    end

    def broken!(why)
      @broken = why
      error = why.include?("deadline") ? TimeoutError : Error
      raise error, "#{self}: #{why}; its log:\n#{log_tail}"
    end

    def remote_error(class_name, message, backtrace)
      text = "#{message} (raised in #{self} as #{class_name})"
      klass = begin
        Object.const_get(class_name)
      rescue NameError
        nil
      end
      klass = RemoteError unless klass.is_a?(Class) && klass <= StandardError
      error = begin
        klass.new(text)
      rescue StandardError
        RemoteError.new(text)
      end
      error.set_backtrace(Array(backtrace) + caller)
      error
    end
  end
end
