# frozen_string_literal: true

class PeerProcess
  # A read or a write made on a thread of its own (read_async, write_async), so
  # that the test can act while it is under way (held at the L2 gate, say);
  # await_async collects its value. One background call at a time.
  module BackgroundCalls
    private

    def command_read_async(key, options = {})
      background { store.read(key, options) }
    end

    # Writes in the background; then, with +after+, closes the store (:close)
    # or ends the process the way a finished script does (:exit: the main
    # thread exits and at_exit handlers run). Other options go to the write.
    def command_write_async(key, value, after: nil, **options)
      cache = store
      background do
        cache.write(key, value, options)
        cache.close if after == :close
        Thread.main.raise(SystemExit) if after == :exit
        true
      end
    end

    def background(&)
      raise ArgumentError, "a background call is running" if @async&.alive?

      @async = Thread.new(&)
      true
    end

    # The background call's value, once it returns (or raises after +timeout+).
    def command_await_async(timeout)
      @async.join(timeout) or raise "the background call did not return within #{timeout} s"
      @async.value
    end
  end
end
