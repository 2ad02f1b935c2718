//go:build tools

// Keeps the engine's main package in this wrapper module's requirements.
package main

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
