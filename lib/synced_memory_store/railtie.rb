# frozen_string_literal: true

module SyncedMemoryStore
  # Rails integration: when the application's cache store is
  # <tt>:synced_memory_store</tt> with sync on and no +secret:+ of its own, bus
  # messages are signed with a key derived from the application's
  # secret_key_base, so every process of the application (sharing that secret)
  # accepts only messages from the others. Give <tt>secret: nil</tt> to opt out.
  class Railtie < ::Rails::Railtie
    # Purpose string of the derived key (changing it changes every key).
    KEY_PURPOSE = "synced_memory_store bus"

    initializer "synced_memory_store.secret", before: :initialize_cache do |app|
      Railtie.sign_bus_messages(app.config, app.key_generator)
    end

    # Adds the derived secret to +config.cache_store+'s options when they ask
    # for this store with sync on and say nothing about a secret.
    def self.sign_bus_messages(config, key_generator)
      store, *arguments = Array(config.cache_store)
      return unless store.to_s == "synced_memory_store"

      options = arguments.last.is_a?(Hash) ? arguments.pop.dup : {}
      unless options.key?(:secret) || options[:sync] == false
        options[:secret] = key_generator.generate_key(KEY_PURPOSE, 32)
      end
      config.cache_store = [store, *arguments, options]
    end
  end
end
