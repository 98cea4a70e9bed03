"""MQTT plumbing shared by the device and the cloud: broker URLs and a configured paho client."""
