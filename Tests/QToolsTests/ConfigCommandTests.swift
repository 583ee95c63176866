import ArgumentParser
import TestSupport
import Testing

@testable import QTools

/// `qtools config show`, in process: argument binding and exit statuses.
@Suite struct ConfigCommandTests {
    @Test func overridesAfterTheTerminatorAreCollected() throws {
        let command = try ConfigShowCommand.parse(["my.cfg", "--json", "--", "--lr", "1", "-e"])
        #expect(command.config == "my.cfg")
        #expect(command.json)
        #expect(!command.all)
        #expect(command.overrides == ["--lr", "1", "-e"])
    }

    @Test func missingFileExits66() throws {
        let command = try ConfigShowCommand.parse([Fixtures.path("seed-configs/config.missing")])
        let exit = try #require(throws: ExitCode.self) { try command.run() }
        #expect(exit.rawValue == 66)
    }

    @Test func malformedOverrideExits65() throws {
        let path = Fixtures.path("golden/resnet20_fp/config.txt")
        let command = try ConfigShowCommand.parse([path, "--", "--widht_alpha", "2"])
        let exit = try #require(throws: ExitCode.self) { try command.run() }
        #expect(exit.rawValue == 65)
    }

    @Test func configIsRegisteredUnderTheRoot() {
        let names = QToolsCommand.configuration.subcommands.map { $0.configuration.commandName }
        #expect(names.contains("config"))
        #expect(
            ConfigCommand.configuration.subcommands.map { $0.configuration.commandName } == ["show"]
        )
    }
}
