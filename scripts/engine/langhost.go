// pulumi-language-python: fellesdrift's Python language host for the Pulumi engine.
//
// The Go module proxy does not serve Pulumi's own language host module, so this small host is
// built from the Pulumi SDK (github.com/pulumi/pulumi/sdk/v3, same version as the engine). It
// implements the LanguageRuntime gRPC service the engine calls: it runs a Python program through
// pulumi-language-python-exec (installed beside this binary) with the interpreter named by the
// project's `runtime.options.virtualenv` (Pulumi.yaml) or, failing that, PULUMI_PYTHON_CMD or
// python3. Plugin discovery is not needed: fellesdrift's programs use only the Python dynamic
// provider, which the engine starts through pulumi-resource-pulumi-python.
//
// The host lives no longer than its engine: like Pulumi's own language hosts it health-checks
// the engine's gRPC address (rpcutil.Healthcheck) and, once the engine stops answering (killed,
// crashed), stops serving, kills the program it is running (its whole process group) and exits.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// version is set at build time (-ldflags -X main.version=...) to the SDK version.
var version = "0.0.0-dev"

// bailExitCode is what the exec script exits with after it has reported the error itself.
const bailExitCode = 32

// engineCheck is how often the host asks the engine whether it is still there. Pulumi's own hosts
// ask every 5 minutes; a local gRPC health check costs next to nothing, and a host that outlives
// its engine by minutes holds the program (and its locks) for nothing.
const engineCheck = 2 * time.Second

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engine string
	// alive is cancelled when the engine has gone away.
	alive context.Context
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "-version") {
		fmt.Println(version)
		return
	}
	// The engine passes flags first and its own address last.
	engine := ""
	if len(os.Args) > 1 {
		engine = os.Args[len(os.Args)-1]
	}
	alive, engineGone := context.WithCancel(context.Background())
	stop := make(chan bool)
	go func() {
		<-alive.Done()
		close(stop)
	}()
	if engine != "" {
		if err := rpcutil.Healthcheck(alive, engine, engineCheck, engineGone); err != nil {
			fmt.Fprintf(os.Stderr, "pulumi-language-python: cannot watch the engine: %v\n", err)
			os.Exit(1)
		}
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: stop,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, &host{engine: engine, alive: alive})
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: could not listen: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
}

// python returns the interpreter for a program rooted at root.
func python(root string, info *pulumirpc.ProgramInfo) string {
	if info != nil && info.GetOptions() != nil {
		if venv, ok := info.GetOptions().AsMap()["virtualenv"].(string); ok && venv != "" {
			if !filepath.IsAbs(venv) {
				venv = filepath.Join(root, venv)
			}
			return filepath.Join(venv, "bin", "python")
		}
	}
	if cmd := os.Getenv("PULUMI_PYTHON_CMD"); cmd != "" {
		return cmd
	}
	return "python3"
}

func execScript() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(self), "pulumi-language-python-exec"), nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	script, err := execScript()
	if err != nil {
		return nil, err
	}
	root := req.GetPwd()
	if info := req.GetInfo(); info != nil && info.GetRootDirectory() != "" {
		root = info.GetRootDirectory()
	}
	program := req.GetProgram()
	if info := req.GetInfo(); info != nil && info.GetProgramDirectory() != "" {
		program = info.GetProgramDirectory()
	}
	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	secretKeys, err := json.Marshal(req.GetConfigSecretKeys())
	if err != nil {
		return nil, err
	}
	args := []string{
		"-u", script,
		"--monitor", req.GetMonitorAddress(),
		"--engine", h.engine,
		"--project", req.GetProject(),
		"--stack", req.GetStack(),
		"--organization", req.GetOrganization(),
		"--pwd", req.GetPwd(),
		"--root", root,
		"--dry_run", strconv.FormatBool(req.GetDryRun()),
		"--parallel", strconv.Itoa(int(req.GetParallel())),
		program,
	}
	args = append(args, req.GetArgs()...)
	// The program runs until it ends, the engine cancels the call, or the engine is gone; then
	// its whole process group goes (the program and anything it started).
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.alive, cancel)()
	cmd := exec.CommandContext(runCtx, python(root, req.GetInfo()), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Dir = req.GetPwd()
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(),
		"PULUMI_CONFIG="+string(config),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys),
	)
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if exitErr.ExitCode() == bailExitCode {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{
				Error: fmt.Sprintf("the Python program exited with code %d", exitErr.ExitCode()),
			}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run %s: %v", cmd.Path, err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

func (h *host) Handshake(
	ctx context.Context, req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	if req.GetEngineAddress() != "" {
		h.engine = req.GetEngineAddress()
	}
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (h *host) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *host) GetRequiredPackages(
	context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *host) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest,
	stream grpc.ServerStreamingServer[pulumirpc.InstallDependenciesResponse],
) error {
	// Dependencies come from the project's lock (make setup), not from the engine.
	return stream.Send(&pulumirpc.InstallDependenciesResponse{
		Stdout: []byte("dependencies are installed by `make setup` from requirements.lock\n"),
	})
}

func (h *host) RuntimeOptionsPrompts(
	context.Context, *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	py := python(".", req.GetInfo())
	out, err := exec.CommandContext(ctx, py, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", py, err)
	}
	return &pulumirpc.AboutResponse{
		Executable: py,
		Version:    strings.TrimPrefix(strings.TrimSpace(string(out)), "Python "),
	}, nil
}

func (h *host) GetProgramDependencies(
	context.Context, *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}
