"""Typed settings: how to reach Kafka, read from arguments or ``SAGAS_*`` variables."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from sagas.kafka_logs import KafkaLogBridge

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


class KafkaSettings(BaseSettings):
    """Connection settings shared by workers, the client and the CLI.

    Every field can be set from the environment, e.g. ``SAGAS_BOOTSTRAP_SERVERS``.
    """

    model_config = SettingsConfigDict(env_prefix="SAGAS_", frozen=True, extra="forbid")

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        description="Comma-separated host:port list of the Kafka cluster.",
    )
    security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="How clients talk to the brokers."
    )
    sasl_mechanism: SaslMechanism | None = Field(
        default=None, description="SASL mechanism, when the protocol is SASL_*."
    )
    sasl_username: str | None = Field(default=None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    ssl_ca_location: str | None = Field(
        default=None, description="Path of the CA bundle that signed the brokers' certificates."
    )
    client_id: str = Field(default="kafka-sagas", description="Client id shown in broker logs.")
    topic_prefix: str = Field(
        default="", description="Prefix of every topic name, e.g. 'prod.' for 'prod.order.events'."
    )
    schema_registry_url: str | None = Field(
        default=None,
        description="Confluent-API schema registry; when set, records use its wire format.",
    )

    query_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the client sends to the processors' query endpoints.",
    )
    librdkafka_debug: str | None = Field(
        default=None,
        description="librdkafka debug contexts to log (e.g. 'cgrp,fetch'): for diagnosing a"
        " client, verbose; its lines are DEBUG records, shown with --log-level debug.",
    )
    connect_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds to wait for a broker to answer before saying it is unreachable.",
    )

    def client_config(self) -> dict[str, Any]:
        """The librdkafka settings common to producers, consumers and the admin client.

        Each call gives a new log bridge, so each client's repeated lines are counted apart.
        """
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
            # librdkafka's floor for this setting is 1 s.
            "socket.connection.setup.timeout.ms": max(1000, int(self.connect_timeout * 1000)),
            "logger": KafkaLogBridge(),
        }
        if self.librdkafka_debug:
            config["debug"] = self.librdkafka_debug
        if self.sasl_mechanism is not None:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username is not None:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password is not None:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location is not None:
            config["ssl.ca.location"] = self.ssl_ca_location
        return config
